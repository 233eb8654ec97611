//! Plain HTTP/1.1 GETs on the daemons' local endpoints (`/metrics`, `/health`, `/ready`) and
//! one sample read out of a Prometheus text exposition.

/// The value of the sample `series` (name with its labels, as printed) in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `GET path` on a local HTTP endpoint; returns the body.
pub fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).unwrap()
}

/// `GET path` on a local HTTP endpoint: the body, or the I/O error.
pub fn try_http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// A response of a local HTTP endpoint: status code, content type and body.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `content-type`, empty when absent.
    pub content_type: String,
    /// Body.
    pub body: String,
}

/// `GET path` on a local HTTP endpoint with an optional `Accept` header.
pub fn http_response(
    addr: &str,
    path: &str,
    accept: Option<&str>,
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    let accept = accept
        .map(|a| format!("accept: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n{accept}\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    Ok(HttpResponse {
        status,
        content_type,
        body: body.to_string(),
    })
}
