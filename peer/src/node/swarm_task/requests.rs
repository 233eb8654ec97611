//! The request-response side of the swarm task: an inbound request goes to the owner with a
//! [`Responder`] (or is answered "busy" when the owner's channel is full), an answer or an
//! outbound failure goes to the caller waiting for it, with the path its connection took.

use super::{NodeEvent, SwarmTask};
use crate::node::NodeError;
use crate::node::codec::RequestFrame;
use crate::node::config::Protocol;
use crate::node::handle::{Answer, Command};
use libp2p::request_response::{self, ResponseChannel};
use tokio::sync::mpsc;

/// Answers one inbound request.
#[derive(Debug)]
pub struct Responder {
    protocol: Protocol,
    channel: ResponseChannel<Vec<u8>>,
    commands: mpsc::Sender<Command>,
}

impl Responder {
    /// Sends the answer; fails only when the node has stopped.
    pub async fn respond(self, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.commands
            .send(Command::Respond {
                protocol: self.protocol,
                channel: self.channel,
                bytes,
            })
            .await
            .map_err(|_| NodeError::Closed)
    }
}

impl SwarmTask {
    /// One request-response event on `protocol`.
    pub(super) fn on_rr_event(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<RequestFrame, Vec<u8>>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Some(commands) = self.command_tx.upgrade() else {
                    return;
                };
                let responder = Responder {
                    protocol,
                    channel,
                    commands,
                };
                let ev = NodeEvent::Request {
                    protocol,
                    peer,
                    frame: request,
                    responder,
                };
                if let Err(refused) = self.offer(ev)
                    && let NodeEvent::Request { responder, .. } = *refused
                {
                    tracing::warn!(%peer, ?protocol, "owner busy: request refused");
                    let busy = protocols::wire::busy_reply();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .rr_mut(protocol)
                        .send_response(responder.channel, busy);
                }
            }
            Event::Message {
                connection_id,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let _ = reply.send(Ok(Answer {
                        bytes: response,
                        path: self.paths.get(&connection_id).map(|(_, path)| *path),
                    }));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let connection_lost = matches!(
                        error,
                        request_response::OutboundFailure::ConnectionClosed
                            | request_response::OutboundFailure::Io(_)
                    );
                    let _ = reply.send(Err(NodeError::Request {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                        connection_lost,
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, ?protocol, %error, "inbound request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
