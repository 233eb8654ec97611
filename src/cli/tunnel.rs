//! `entroshard tunnel listen|connect`: a Noise NNpsk0 channel over TCP keyed by the session key,
//! piping stdin to the peer and the peer to stdout, like `nc`.
//!
//! The listener runs one channel: it accepts connections until one completes the handshake
//! (each attempt bounded by `--handshake-timeout`, at most [`MAX_PENDING_HANDSHAKES`] at once),
//! logs every refused attempt and keeps listening (decision 0033). An established channel is
//! closed after `--idle-timeout` seconds without a message either way (off by default).

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"entroshard/v1/tunnel";
/// Largest plaintext per Noise message.
const CHUNK: usize = 65_535 - 16;
/// Length of the initiator's NNpsk0 handshake message with an empty payload: its ephemeral key
/// (32 bytes) and the payload's tag (16).
const FIRST_MESSAGE_LEN: usize = 48;
/// Handshakes the listener runs at once; further connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 16;

/// `tunnel` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TunnelCommand {
    /// Listen on ADDR until one connection completes the handshake, and run the channel.
    Listen(TunnelArgs),
    /// Connect to ADDR and run the channel.
    Connect(TunnelArgs),
}

/// Options of both sides.
#[derive(Debug, clap::Args)]
pub struct TunnelArgs {
    /// host:port.
    pub addr: String,
    /// Ticket file; the session key becomes the Noise pre-shared key.
    #[arg(long)]
    pub ticket: PathBuf,
    /// Seconds a connection has to complete the handshake before it is dropped.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub handshake_timeout: f64,
    /// Close the channel (exit status 1) after this many seconds without a message in either
    /// direction; 0 keeps it open however long it is quiet, like `nc`.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub idle_timeout: f64,
    #[command(flatten)]
    pub dir: super::requester::RequesterDir,
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> anyhow::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let announced = usize::from(u16::from_be_bytes(len));
    let mut buf = vec![0u8; announced];
    stream.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            anyhow::anyhow!("connection closed inside a frame announcing {announced} bytes")
        } else {
            e.into()
        }
    })?;
    Ok(Some(buf))
}

/// The initiator's first handshake message, as the responder reads it: a frame announcing any
/// other length than [`FIRST_MESSAGE_LEN`] is refused before its body is read.
async fn read_first_message(stream: &mut TcpStream) -> anyhow::Result<[u8; FIRST_MESSAGE_LEN]> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| anyhow::anyhow!("handshake failed: connection closed before it ({e})"))?;
    let announced = usize::from(u16::from_be_bytes(len));
    if announced != FIRST_MESSAGE_LEN {
        bail!(
            "handshake failed: not a tunnel handshake (first frame announces {announced} bytes, \
             expected {FIRST_MESSAGE_LEN})"
        );
    }
    let mut msg = [0u8; FIRST_MESSAGE_LEN];
    stream.read_exact(&mut msg).await.map_err(|e| {
        anyhow::anyhow!("handshake failed: connection closed inside the first message ({e})")
    })?;
    Ok(msg)
}

async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
) -> anyhow::Result<()> {
    let len = u16::try_from(bytes.len()).context("frame too large")?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(bytes).await?;
    Ok(())
}

/// Runs the NNpsk0 handshake on `stream` with `psk`; a wrong key on either side fails here.
pub async fn handshake(
    stream: &mut TcpStream,
    psk: &[u8; 32],
    initiator: bool,
) -> anyhow::Result<snow::TransportState> {
    let params = PATTERN
        .parse()
        .map_err(|e: snow::Error| anyhow::anyhow!("{e}"))?;
    let builder = snow::Builder::new(params).prologue(PROLOGUE)?.psk(0, psk)?;
    let mut hs = if initiator {
        builder.build_initiator()?
    } else {
        builder.build_responder()?
    };
    let mut buf = vec![0u8; 65_535];
    let refused =
        || anyhow::anyhow!("handshake failed: the other side holds a different session key");
    if initiator {
        let n = hs.write_message(&[], &mut buf)?;
        write_frame(stream, &buf[..n]).await?;
        let msg = read_frame(stream).await?.ok_or_else(refused)?;
        hs.read_message(&msg, &mut buf).map_err(|_| refused())?;
    } else {
        let msg = read_first_message(stream).await?;
        hs.read_message(&msg, &mut buf).map_err(|_| refused())?;
        let n = hs.write_message(&[], &mut buf)?;
        write_frame(stream, &buf[..n]).await?;
    }
    Ok(hs.into_transport_mode()?)
}

/// Sends one message on an established channel.
pub async fn send(
    stream: &mut TcpStream,
    transport: &mut snow::TransportState,
    plain: &[u8],
) -> anyhow::Result<()> {
    let mut cipher = vec![0u8; plain.len() + 16];
    let n = transport.write_message(plain, &mut cipher)?;
    write_frame(stream, &cipher[..n]).await
}

/// Receives one message on an established channel (None at end of stream).
pub async fn recv(
    stream: &mut TcpStream,
    transport: &mut snow::TransportState,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(frame) = read_frame(stream).await? else {
        return Ok(None);
    };
    let mut plain = vec![0u8; frame.len()];
    let n = transport
        .read_message(&frame, &mut plain)
        .context("a message did not authenticate")?;
    plain.truncate(n);
    Ok(Some(plain))
}

fn handshake_timeout(seconds: f64) -> anyhow::Result<Duration> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3_600.0) {
        bail!("--handshake-timeout must be between 0 and 3600 seconds, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `--idle-timeout`: None for 0 (never).
fn idle_timeout(seconds: f64) -> anyhow::Result<Option<Duration>> {
    if !(seconds.is_finite() && (0.0..=86_400.0).contains(&seconds)) {
        bail!("--idle-timeout must be between 0 (never) and 86400 seconds, not {seconds}");
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// When the channel last carried a message, in either direction.
struct LastActivity {
    start: tokio::time::Instant,
    elapsed_ms: std::sync::atomic::AtomicU64,
}

impl LastActivity {
    fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            elapsed_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns once `idle` has passed without a [`touch`](Self::touch).
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.elapsed_ms.load(std::sync::atomic::Ordering::Relaxed);
            let deadline = self.start + Duration::from_millis(last) + idle;
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Pipes stdin into the channel and the channel to stdout until both directions end, or until
/// `idle` passes without a message either way.
async fn run_channel(
    stream: TcpStream,
    transport: snow::TransportState,
    idle: Option<Duration>,
) -> anyhow::Result<()> {
    // Both directions run in this one task; the lock only keeps each Noise call exclusive.
    let transport = std::sync::Mutex::new(transport);
    let activity = LastActivity::new();
    let (mut rd, mut wr) = stream.into_split();
    let upstream = async {
        let mut stdin = tokio::io::stdin();
        let mut plain = vec![0u8; CHUNK];
        let mut cipher = vec![0u8; 65_535];
        loop {
            let n = stdin.read(&mut plain).await?;
            if n == 0 {
                wr.shutdown().await?;
                return anyhow::Ok(());
            }
            let m = transport
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .write_message(&plain[..n], &mut cipher)?;
            write_frame(&mut wr, &cipher[..m]).await?;
            activity.touch();
        }
    };
    let downstream = async {
        let mut stdout = tokio::io::stdout();
        let mut plain = vec![0u8; 65_535];
        while let Some(frame) = read_frame(&mut rd).await? {
            activity.touch();
            let n = transport
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .read_message(&frame, &mut plain)
                .context("a message did not authenticate")?;
            stdout.write_all(&plain[..n]).await?;
            stdout.flush().await?;
        }
        anyhow::Ok(())
    };
    let idle_expired = async {
        match idle {
            Some(idle) => {
                activity.idle_for(idle).await;
                idle
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        (up, down) = async { tokio::join!(upstream, downstream) } => {
            if let Err(e) = down {
                bail!("channel: {e}");
            }
            up
        }
        idle = idle_expired => bail!("channel closed: no message either way for {idle:?} (--idle-timeout)"),
    }
}

/// Accepts connections until one completes the handshake as responder, and returns it. Every
/// refused attempt (wrong key, garbage, closed early, too slow) is logged with its address and
/// reason; the listener keeps listening. At most [`MAX_PENDING_HANDSHAKES`] run at once.
async fn accept_channel(
    listener: &TcpListener,
    key: &Arc<protocols::keys::SessionKey>,
    timeout: Duration,
) -> (TcpStream, snow::TransportState) {
    let mut pending = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if pending.len() < MAX_PENDING_HANDSHAKES => {
                match accepted {
                    Ok((mut stream, from)) => {
                        let key = key.clone();
                        pending.spawn(async move {
                            let outcome = tokio::time::timeout(
                                timeout,
                                handshake(&mut stream, key.expose(), false),
                            )
                            .await
                            .unwrap_or_else(|_| {
                                Err(anyhow::anyhow!(
                                    "handshake failed: not completed within {timeout:?}"
                                ))
                            });
                            (from, stream, outcome)
                        });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait a little rather than spin.
                        eprintln!("accept failed: {e}; still listening");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Some(done) = pending.join_next() => match done {
                Ok((_, stream, Ok(transport))) => return (stream, transport),
                Ok((from, _, Err(e))) => {
                    eprintln!("refused a connection from {from}: {e:#}; still listening");
                }
                Err(e) => eprintln!("a handshake task failed: {e}; still listening"),
            },
        }
    }
}

/// Runs a tunnel subcommand.
pub fn run(command: TunnelCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (initiator, args) = match command {
            TunnelCommand::Listen(a) => (false, a),
            TunnelCommand::Connect(a) => (true, a),
        };
        let timeout = handshake_timeout(args.handshake_timeout)?;
        let idle = idle_timeout(args.idle_timeout)?;
        let (key, _) = super::requester::fetch_key(&args.dir.data_dir, &args.ticket).await?;
        let key = Arc::new(key);
        let (stream, transport) = if initiator {
            let mut stream = TcpStream::connect(&args.addr)
                .await
                .with_context(|| format!("connecting to {}", args.addr))?;
            let transport =
                tokio::time::timeout(timeout, handshake(&mut stream, key.expose(), true))
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("handshake failed: no answer within {timeout:?}")
                    })??;
            (stream, transport)
        } else {
            let listener = TcpListener::bind(&args.addr)
                .await
                .with_context(|| format!("listening on {}", args.addr))?;
            eprintln!("listening on {}", listener.local_addr()?);
            accept_channel(&listener, &key, timeout).await
        };
        eprintln!(
            "channel up (Noise NNpsk0, key fingerprint {})",
            key.fingerprint()
        );
        run_channel(stream, transport, idle).await
    })
}
