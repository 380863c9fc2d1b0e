//! A minimal HTTP/1.1 server with deterministic bodies, and a fetcher that goes through SOCKS5.
//!
//! `GET /bytes/N` answers N bytes whose value at offset i is `pattern_byte(i)`, so the client
//! checks every byte without storing the expected body. Both sides are bounded (request size,
//! body size) and close after one response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest body the server produces.
pub const MAX_BODY: u64 = 1 << 30;
const PATTERN_LEN: usize = 65_521; // prime, so chunk boundaries never line up with the pattern

fn pattern() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..PATTERN_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The exact body `GET /bytes/size` answers (for checksums in tests).
pub fn expected_body(size: u64) -> Vec<u8> {
    let mut out = vec![0u8; size as usize];
    fill(&mut out, 0, &pattern());
    out
}

/// Serves `GET /bytes/N` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let pat = std::sync::Arc::new(pattern());
    while let Ok((tcp, _)) = listener.accept().await {
        let pat = pat.clone();
        tokio::spawn(async move {
            let _ = answer(tcp, &pat).await;
        });
    }
}

async fn answer(mut tcp: TcpStream, pat: &[u8]) -> std::io::Result<()> {
    let mut req = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await?;
        if n == 0 || req.len() + n > 8192 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&req);
    let size = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET /bytes/"))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n <= MAX_BODY);
    let Some(size) = size else {
        tcp.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut off: u64 = 0;
    while off < size {
        let n = ((size - off) as usize).min(chunk.len());
        fill(&mut chunk[..n], off, pat);
        tcp.write_all(&chunk[..n]).await?;
        off += n as u64;
    }
    tcp.shutdown().await
}

fn fill(out: &mut [u8], offset: u64, pat: &[u8]) {
    let mut p = (offset % PATTERN_LEN as u64) as usize;
    let mut done = 0;
    while done < out.len() {
        let n = (PATTERN_LEN - p).min(out.len() - done);
        out[done..done + n].copy_from_slice(&pat[p..p + n]);
        done += n;
        p = 0;
    }
}

/// Whether `data` equals the body bytes at `offset`, without building a copy.
fn matches(data: &[u8], offset: u64, pat: &[u8]) -> bool {
    let mut p = (offset % PATTERN_LEN as u64) as usize;
    let mut done = 0;
    while done < data.len() {
        let n = (PATTERN_LEN - p).min(data.len() - done);
        if data[done..done + n] != pat[p..p + n] {
            return false;
        }
        done += n;
        p = 0;
    }
    true
}

/// The result of one fetch.
#[derive(Debug, Clone)]
pub struct FetchResult {
    /// Time from connecting to the proxy to the first body byte.
    pub ttfb: Duration,
    /// Time from connecting to the proxy to the last body byte.
    pub total: Duration,
    /// Body bytes received and verified.
    pub bytes: u64,
}

/// Fetches `/bytes/size` from `host:port` through the SOCKS5 proxy at `socks`, with optional
/// username/password (an isolation key), checking every byte.
pub async fn fetch(
    socks: SocketAddr,
    host: &str,
    port: u16,
    size: u64,
    credentials: Option<(&str, &str)>,
) -> Result<FetchResult, String> {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(socks)
        .await
        .map_err(|e| format!("connect to proxy: {e}"))?;
    let _ = tcp.set_nodelay(true);
    socks_connect(&mut tcp, host, port, credentials).await?;
    let req = format!("GET /bytes/{size} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("send request: {e}"))?;
    // Read the head.
    let mut head = Vec::with_capacity(512);
    let mut buf = vec![0u8; 256 * 1024];
    let body_start;
    loop {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            body_start = p + 4;
            break;
        }
        if head.len() > 16 * 1024 {
            return Err("response head too long".into());
        }
    }
    let text = String::from_utf8_lossy(&head[..body_start]).to_string();
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "bad status: {}",
            text.lines().next().unwrap_or_default()
        ));
    }
    let pat = pattern();
    let mut got: u64 = 0;
    let mut ttfb = None;
    let check = |data: &[u8], got: &mut u64| -> Result<(), String> {
        if !matches(data, *got, &pat) {
            return Err(format!("body differs near offset {got}"));
        }
        *got += data.len() as u64;
        Ok(())
    };
    let first = &head[body_start..];
    if !first.is_empty() {
        ttfb = Some(start.elapsed());
        check(first, &mut got)?;
    }
    while got < size {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| format!("read body at {got}: {e}"))?;
        if n == 0 {
            return Err(format!("body truncated at {got} of {size}"));
        }
        if ttfb.is_none() {
            ttfb = Some(start.elapsed());
        }
        let take = n.min((size - got) as usize);
        check(&buf[..take], &mut got)?;
    }
    let total = start.elapsed();
    Ok(FetchResult {
        ttfb: ttfb.unwrap_or(total),
        total,
        bytes: got,
    })
}

/// A minimal SOCKS5 client CONNECT (the simulator's own client; tests also use curl and
/// fast-socks5). The host is sent as a name unless it parses as an IP address.
pub async fn socks_connect(
    tcp: &mut TcpStream,
    host: &str,
    port: u16,
    credentials: Option<(&str, &str)>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("socks: {e}");
    match credentials {
        None => tcp.write_all(&[5, 1, 0]).await.map_err(io)?,
        Some(_) => tcp.write_all(&[5, 1, 2]).await.map_err(io)?,
    }
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.map_err(io)?;
    if let Some((user, pass)) = credentials {
        if choice != [5, 2] {
            return Err(format!("socks: method refused {choice:?}"));
        }
        let mut auth = vec![1, user.len() as u8];
        auth.extend_from_slice(user.as_bytes());
        auth.push(pass.len() as u8);
        auth.extend_from_slice(pass.as_bytes());
        tcp.write_all(&auth).await.map_err(io)?;
        let mut r = [0u8; 2];
        tcp.read_exact(&mut r).await.map_err(io)?;
        if r != [1, 0] {
            return Err("socks: auth refused".into());
        }
    } else if choice != [5, 0] {
        return Err(format!("socks: method refused {choice:?}"));
    }
    let mut req = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            req.push(3);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await.map_err(io)?;
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            tcp.read_exact(&mut l).await.map_err(io)?;
            l[0] as usize + 2
        }
        _ => return Err("socks: bad reply".into()),
    };
    let mut skip = vec![0u8; rest];
    tcp.read_exact(&mut skip).await.map_err(io)?;
    if head[1] != 0 {
        return Err(format!("socks reply code {:#04x}", head[1]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_match_agree_across_pattern_wraps() {
        let pat = pattern();
        let mut a = vec![0u8; 3 * PATTERN_LEN + 17];
        fill(&mut a, 5, &pat);
        for (i, b) in a.iter().enumerate() {
            assert_eq!(*b, pat[(i + 5) % PATTERN_LEN]);
        }
        assert!(matches(&a[100..190_000], 105, &pat));
        let mut bad = a.clone();
        bad[100_000] ^= 1;
        assert!(!matches(&bad, 5, &pat));
        assert_eq!(
            expected_body(10),
            a[PATTERN_LEN - 5..PATTERN_LEN + 5].to_vec()
        );
    }
}
