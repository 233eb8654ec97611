//! The mesh node shared by every role, and the device agent that runs on each peer:
//! entropy sources, the contribution loop, the share store and the share service.

pub mod addr;
pub mod agent;
pub mod config;
pub mod contribution;
pub mod db;
pub mod heap;
pub mod identity;
pub mod metrics_http;
pub mod node;
pub mod pace;
pub mod pipeline;
pub mod secret_file;
pub mod share_key;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod ticket_cache;
