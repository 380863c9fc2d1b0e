//! A standalone copy of the simulator's HTTP server, for the end-to-end bench script:
//! `http_server [ADDR]` serves `GET /bytes/N` and prints `ready http=ADDR`.

use braid_simulations::http;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ready http={}", listener.local_addr()?);
    http::serve(listener).await;
    Ok(())
}
