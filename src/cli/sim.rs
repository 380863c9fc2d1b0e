//! `braid sim`: a whole network in this process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_simulations::{Scenario, SimNetwork, run};

use super::stop::wait_for_stop;

pub(crate) async fn sim(
    scenario: Option<PathBuf>,
    serve: bool,
    for_secs: Option<u64>,
    report_json: Option<PathBuf>,
) -> Result<ExitCode> {
    let s = match &scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::default(),
    };
    let net = SimNetwork::start(&s).await?;
    run::wait_ready(&net, Duration::from_secs(30)).await?;
    if serve {
        // The sim's proxy serves the local API too (status page, `braid status`).
        let api = net.proxy.start_api(net.proxy_config()).await?;
        let token = braid_node::api::client::token_file(&net.proxy_config().data_dir);
        println!(
            "ready socks5={} api=http://{api} token={}",
            net.socks_addr(),
            token.display()
        );
        wait_for_stop(for_secs).await?;
        net.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    let report = run::run_fetches(&s, &net).await;
    println!("{}", report.table());
    if let Some(ready) = net.directory_ready {
        println!(
            "registries: {} (one Raft group); every relay listed in the proxy's verified directory \
             {:.2} s after the relays started",
            net.registries.len(),
            ready.as_secs_f64()
        );
    }
    if let Some(path) = report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    net.shutdown().await;
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
