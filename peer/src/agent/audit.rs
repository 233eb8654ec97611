//! Entropy audits on the device: the coordinator asks for a window of fresh raw samples of one
//! source (docs/protocol/entropy-audit.md); the source's harvest thread reads them.

use protocols::wire::{AuditRequest, AuditWindow, MAX_AUDIT_SAMPLES, Refusal, WIRE_VERSION};
use std::collections::BTreeMap;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Longest the device spends answering one audit (reading the window included).
pub const AUDIT_ANSWER_TIME: Duration = Duration::from_secs(10);
/// Longest a source's thread spends reading an audit window.
pub const AUDIT_READ_TIME: Duration = Duration::from_secs(3);

/// One audit for a source's harvest thread: read `samples` fresh raw samples.
pub struct AuditJob {
    /// Samples wanted.
    pub samples: usize,
    /// Where the window (or why there is none) goes.
    pub reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// Reads a window of `n` samples in the caller's thread (the simulator's sensors).
pub type WindowReader = Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>;

/// Where a source's audit windows come from.
#[derive(Clone)]
enum Answerer {
    /// A queue of one job to the source's harvest thread.
    Thread(SyncSender<AuditJob>),
    /// A reader run on the blocking pool.
    Reader(WindowReader),
}

/// The sources that answer audits, by name.
#[derive(Clone, Default)]
pub struct AuditDesk {
    sources: Arc<Mutex<BTreeMap<String, (u8, Answerer)>>>,
}

impl AuditDesk {
    /// Registers a source's queue (`bits_per_sample` is reported with its windows).
    pub fn register(&self, source: &str, bits_per_sample: u8, jobs: SyncSender<AuditJob>) {
        if let Ok(mut s) = self.sources.lock() {
            s.insert(
                source.to_string(),
                (bits_per_sample, Answerer::Thread(jobs)),
            );
        }
    }

    /// Registers a source whose windows `read` produces (no harvest thread of its own).
    pub fn register_reader(&self, source: &str, bits_per_sample: u8, read: WindowReader) {
        if let Ok(mut s) = self.sources.lock() {
            s.insert(
                source.to_string(),
                (bits_per_sample, Answerer::Reader(read)),
            );
        }
    }

    /// Answers one audit request: refuses what is malformed, unknown or already being
    /// answered, otherwise waits (bounded) for the source's thread to read the window.
    pub async fn answer(&self, request: AuditRequest) -> Result<AuditWindow, Refusal> {
        if request.samples == 0 || request.samples > MAX_AUDIT_SAMPLES {
            return Err(Refusal::Malformed(format!(
                "audit of {} samples: 1..={MAX_AUDIT_SAMPLES} allowed",
                request.samples
            )));
        }
        let (bits, answerer) = self
            .sources
            .lock()
            .map_err(|_| Refusal::Internal)?
            .get(&request.source)
            .cloned()
            .ok_or(Refusal::NotFound)?;
        let jobs = match answerer {
            Answerer::Thread(jobs) => jobs,
            Answerer::Reader(read) => {
                let n = request.samples as usize;
                let samples = tokio::task::spawn_blocking(move || read(n))
                    .await
                    .map_err(|_| Refusal::Internal)?;
                return Ok(AuditWindow {
                    v: WIRE_VERSION,
                    source: request.source,
                    bits_per_sample: bits,
                    samples,
                });
            }
        };
        let (tx, rx) = oneshot::channel();
        match jobs.try_send(AuditJob {
            samples: request.samples as usize,
            reply: tx,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Refusal::RateLimited),
            Err(TrySendError::Disconnected(_)) => {
                return Err(Refusal::NotReady(format!(
                    "source {} is no longer harvested",
                    request.source
                )));
            }
        }
        match tokio::time::timeout(AUDIT_ANSWER_TIME, rx).await {
            Ok(Ok(Ok(samples))) => Ok(AuditWindow {
                v: WIRE_VERSION,
                source: request.source,
                bits_per_sample: bits,
                samples,
            }),
            Ok(Ok(Err(reason))) => Err(Refusal::NotReady(reason)),
            Ok(Err(_)) | Err(_) => Err(Refusal::NotReady(format!(
                "source {} did not give its window in time",
                request.source
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(source: &str, samples: u32) -> AuditRequest {
        AuditRequest {
            v: WIRE_VERSION,
            source: source.into(),
            samples,
        }
    }

    #[tokio::test]
    async fn unknown_sources_oversized_windows_and_a_busy_source_are_refused_by_name() {
        let desk = AuditDesk::default();
        assert_eq!(
            desk.answer(request("nope", 10)).await.unwrap_err(),
            Refusal::NotFound
        );
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        desk.register("jitter", 4, tx);
        assert!(matches!(
            desk.answer(request("jitter", MAX_AUDIT_SAMPLES + 1))
                .await
                .unwrap_err(),
            Refusal::Malformed(_)
        ));
        // A thread that answers: the window comes back with the source's width.
        let worker = std::thread::spawn(move || {
            let job: AuditJob = rx.recv().unwrap();
            job.reply.send(Ok(vec![1; job.samples])).unwrap();
            rx
        });
        let window = desk.answer(request("jitter", 5)).await.unwrap();
        assert_eq!((window.bits_per_sample, window.samples.len()), (4, 5));
        drop(worker.join().unwrap());
        assert!(matches!(
            desk.answer(request("jitter", 5)).await.unwrap_err(),
            Refusal::NotReady(_)
        ));
    }
}
