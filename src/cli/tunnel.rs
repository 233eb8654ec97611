//! `entroshard tunnel listen|connect`: a Noise NNpsk0 channel over TCP keyed by the session key,
//! piping stdin to the peer and the peer to stdout, like `nc`.

use anyhow::{Context, bail};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"entroshard/v1/tunnel";
/// Largest plaintext per Noise message.
const CHUNK: usize = 65_535 - 16;

/// `tunnel` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TunnelCommand {
    /// Accept one connection on ADDR and run the channel.
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
    #[command(flatten)]
    pub dir: super::requester::RequesterDir,
}

async fn read_frame(stream: &mut TcpStream) -> anyhow::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(Some(buf))
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
        let msg = read_frame(stream).await?.ok_or_else(refused)?;
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
        let (key, _) = super::requester::fetch_key(&args.dir.data_dir, &args.ticket).await?;
        let mut stream = if initiator {
            TcpStream::connect(&args.addr)
                .await
                .with_context(|| format!("connecting to {}", args.addr))?
        } else {
            let listener = TcpListener::bind(&args.addr)
                .await
                .with_context(|| format!("listening on {}", args.addr))?;
            eprintln!("listening on {}", listener.local_addr()?);
            listener.accept().await?.0
        };
        let transport = std::sync::Arc::new(std::sync::Mutex::new(
            handshake(&mut stream, key.expose(), initiator).await?,
        ));
        eprintln!(
            "channel up (Noise NNpsk0, key fingerprint {})",
            key.fingerprint()
        );
        let (mut rd, mut wr) = stream.into_split();
        let t_out = transport.clone();
        let upstream = async move {
            let mut stdin = tokio::io::stdin();
            let mut plain = vec![0u8; CHUNK];
            let mut cipher = vec![0u8; 65_535];
            loop {
                let n = stdin.read(&mut plain).await?;
                if n == 0 {
                    wr.shutdown().await?;
                    return anyhow::Ok(());
                }
                let m = t_out
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .write_message(&plain[..n], &mut cipher)?;
                write_frame(&mut wr, &cipher[..m]).await?;
            }
        };
        let downstream = async move {
            let mut stdout = tokio::io::stdout();
            let mut plain = vec![0u8; 65_535];
            loop {
                let mut len = [0u8; 2];
                if rd.read_exact(&mut len).await.is_err() {
                    return anyhow::Ok(());
                }
                let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
                rd.read_exact(&mut frame).await?;
                let n = transport
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .read_message(&frame, &mut plain)
                    .context("a message did not authenticate")?;
                stdout.write_all(&plain[..n]).await?;
                stdout.flush().await?;
            }
        };
        let (up, down) = tokio::join!(upstream, downstream);
        if let Err(e) = down {
            bail!("channel: {e}");
        }
        up
    })
}
