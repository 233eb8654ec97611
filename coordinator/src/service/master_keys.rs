//! Master-key rotation in the running coordinator (decision 0046): a new key becomes current;
//! the old one is erased from `master.key` and from memory once no session and no placement
//! needs it. Sessions are boxed to their holders and under no master key (decision 0053); one
//! dealt before share keys keeps the key it was sealed under until it expires (it is not
//! rotated: decision 0057).

use super::{Ctx, now_ms};
use crate::admin::AdminError;
use crate::admin::requests::MasterKeyRotation;
use crate::master_key::{self, Keyring};
use protocols::sealing::{MasterKeyId, SealingMasterKey};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Starts a master-key rotation: `master.key` durably holds the new key and the old one (as
/// retiring) before the new key seals anything. Refused while one is under way.
pub(super) async fn begin_rotation(ctx: &Arc<Ctx>) -> Result<MasterKeyRotation, AdminError> {
    let ring = ctx.masters.get();
    let old = ring.current().id();
    let raw = Zeroizing::new(super::os_random::<32>());
    let Some(next) = ring.rotated(SealingMasterKey::from_bytes(*raw)) else {
        let retiring = ring.retiring().map(|k| k.id()).unwrap_or(old);
        let sessions = sealed_under(ctx, retiring).await?;
        return Err(AdminError::MasterKeyRotating {
            key: retiring.to_string(),
            sessions,
        });
    };
    let new = next.current().id();
    let path = ctx.config.master_key_path();
    let written = next.clone();
    tokio::task::spawn_blocking(move || master_key::replace(&path, &written))
        .await
        .map_err(|_| AdminError::Stopping)?
        .map_err(|e| AdminError::MasterKeyFile(e.to_string()))?;
    ctx.masters.set(next);
    let sessions = sealed_under(ctx, old).await?;
    tracing::info!(%old, %new, sessions, "master key rotation started: new shares are sealed under the new key; sessions under the old one are re-sealed by rotation");
    Ok(MasterKeyRotation { old, new, sessions })
}

/// Erases the retiring master key once nothing needs it: no placement seals under it any more
/// (checked first: none can start under it again, so the sessions read next are final) and no
/// session is sealed under it. Called from every upkeep tick; a failed write is tried again at
/// the next.
pub(super) async fn erase_retired(ctx: &Arc<Ctx>) {
    let Some((retiring, in_use)) = ctx.masters.retiring_key() else {
        return;
    };
    if in_use {
        return;
    }
    match sealed_under(ctx, retiring).await {
        Ok(0) => {}
        _ => return,
    }
    let ring: Keyring = ctx.masters.get().without_retiring();
    let current = ring.current().id();
    let path = ctx.config.master_key_path();
    let written = ring.clone();
    match tokio::task::spawn_blocking(move || master_key::replace(&path, &written)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the retired master key could not be erased; trying again");
            return;
        }
        Err(_) => return,
    }
    ctx.masters.set(ring);
    tracing::info!(key = %retiring, %current, "retired master key erased: every session is sealed under the current one");
    let entry = crate::core::audit_trail::master_key_erased(retiring, current, now_ms());
    if !matches!(ctx.on_db(move |db| db.append_audit(entry)).await, Ok(Ok(_))) {
        tracing::error!(key = %retiring, "audit entry of a master key erasure not recorded");
    }
}

/// Stored sessions sealed under `key`.
async fn sealed_under(ctx: &Ctx, key: MasterKeyId) -> Result<usize, AdminError> {
    let sessions = ctx
        .on_db(move |db| db.sessions())
        .await
        .map_err(|_| AdminError::Stopping)??;
    Ok(sessions
        .iter()
        .filter(|s| s.sealed_under == Some(key))
        .count())
}
