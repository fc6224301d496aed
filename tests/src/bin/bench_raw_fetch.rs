//! The raw limit for `cargo xtask bench`: the fastest the server hands a folder's mail over.
//! One plain connection, LOGIN, SELECT, `UID FETCH 1:* (UID FLAGS BODY.PEEK[])`, and the bytes
//! discarded unparsed until the tagged OK. Prints `{"bytes": …, "seconds": …, "select_seconds":
//! …}` (the last: connect, LOGIN and SELECT alone).
//!
//! Usage: `bench-raw-fetch HOST PORT USER FOLDER` with the password in `BENCH_PASSWORD`.

#![allow(clippy::print_stdout)] // A measuring tool: stdout is its report.

use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A tag no message body of the benchmark's generator contains.
const TAG: &[u8] = b"RAWFETCH7";

/// Reads until `\r\n{tag} ` followed by the rest of that line; fails on NO/BAD.
async fn read_until_tagged(
    stream: &mut TcpStream,
    tag: &[u8],
    buffer: &mut [u8],
) -> anyhow::Result<u64> {
    let mut needle = b"\r\n".to_vec();
    needle.extend_from_slice(tag);
    needle.push(b' ');
    let mut total = 0u64;
    // The tail of the previous read, so a needle split across reads is still found.
    let mut carry: Vec<u8> = b"\r\n".to_vec();
    loop {
        let read = stream.read(buffer).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        total += read as u64;
        let mut window = std::mem::take(&mut carry);
        window.extend_from_slice(&buffer[..read]);
        if let Some(at) = window
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
        {
            let rest = &window[at + needle.len()..];
            let mut line = rest.to_vec();
            while !line.ends_with(b"\r\n") {
                let read = stream.read(buffer).await?;
                if read == 0 {
                    bail!("the server closed the connection");
                }
                total += read as u64;
                line.extend_from_slice(&buffer[..read]);
            }
            if !line.starts_with(b"OK") {
                bail!("{}", String::from_utf8_lossy(&line).trim_end());
            }
            return Ok(total);
        }
        let keep = needle.len().min(window.len());
        carry = window[window.len() - keep..].to_vec();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, folder] = args.as_slice() else {
        bail!("usage: bench-raw-fetch HOST PORT USER FOLDER (password in BENCH_PASSWORD)");
    };
    let password = std::env::var("BENCH_PASSWORD").context("BENCH_PASSWORD")?;
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut buffer = vec![0u8; 256 * 1024];

    let started = Instant::now();
    let mut stream = TcpStream::connect((host.as_str(), port.parse::<u16>()?)).await?;
    stream.set_nodelay(true)?;
    let greeting = stream.read(&mut buffer).await?;
    if !buffer[..greeting].starts_with(b"* OK") {
        bail!("unexpected greeting");
    }
    for (tag, command) in [
        ("L1", format!("LOGIN {} {}", quote(user), quote(&password))),
        ("S1", format!("SELECT {}", quote(folder))),
    ] {
        stream
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        read_until_tagged(&mut stream, tag.as_bytes(), &mut buffer)
            .await
            .with_context(|| format!("{tag} failed"))?;
    }
    // Connect, LOGIN and SELECT: what any sync pays before its first FETCH.
    let select_seconds = started.elapsed().as_secs_f64();
    let mut fetch = TAG.to_vec();
    fetch.extend_from_slice(b" UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n");
    stream.write_all(&fetch).await?;
    let bytes = read_until_tagged(&mut stream, TAG, &mut buffer).await?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = stream.write_all(b"Z LOGOUT\r\n").await;
    println!(
        "{{\"bytes\": {bytes}, \"seconds\": {seconds}, \"select_seconds\": {select_seconds}}}"
    );
    Ok(())
}
