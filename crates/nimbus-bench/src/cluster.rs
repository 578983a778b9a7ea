//! `--cluster`: what routing warm work across nodes costs (issue 17). Two nodes share the
//! PostgreSQL of the `--server-arg`s and a third Nimbus as their S3 (`--blobs`); a function
//! made on one runs at its home node (rendezvous hashing, `nimbus_api::forward`). Warm
//! invokes sent to the home node are measured against those sent to the other node, which
//! forwards them there, at concurrency 1 and 32, beside a loopback floor of two hops.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;

use crate::{call, connect, create, create_role, invoke, load, pct, start_server_as, us, zip_files, Args, Server, BENCH_KEY};

async fn status(addr: &str) -> anyhow::Result<serde_json::Value> {
    let mut s = connect(addr).await?;
    let (st, body) = call(&mut s, "GET", "/_nimbus/status", Bytes::new()).await?;
    if st != 200 {
        bail!("status of {addr}: {st}");
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Environments (idle and busy) the node at `addr` holds.
async fn environments(addr: &str) -> anyhow::Result<u64> {
    let v = status(addr).await?;
    Ok(v["environments"]["idle"].as_u64().unwrap_or(0) + v["environments"]["busy"].as_u64().unwrap_or(0))
}

pub(crate) async fn bench(args: &Args) -> anyhow::Result<()> {
    if !args.server_args.iter().any(|a| a.starts_with("postgres://")) {
        bail!("--cluster needs --server-arg=--store --server-arg=postgres://… (a fresh database)");
    }
    let s3 = start_server_as(args, "-s3", &[], false, &[])?;
    let mut s = connect(&s3.addr).await?;
    let (st, body) = crate::s3::s3_call(&mut s, "PUT", "/code", Bytes::new()).await?;
    if st != 200 {
        bail!("creating the code bucket: {st} {}", String::from_utf8_lossy(&body));
    }
    let key = std::env::temp_dir().join(format!("nimbus-bench-{}.key", std::process::id()));
    let mut master = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut master)?;
    std::fs::write(&key, master)?;
    let extra = vec![
        "--blobs".to_string(),
        format!("s3://code?endpoint=http://{}&region=us-east-1", s3.addr),
        "--master-key-file".to_string(),
        key.display().to_string(),
    ];
    let creds = [("AWS_ACCESS_KEY_ID", BENCH_KEY.0), ("AWS_SECRET_ACCESS_KEY", BENCH_KEY.1)];
    let nodes: Vec<Server> = vec![start_server_as(args, "-a", &extra, true, &creds)?, start_server_as(args, "-b", &extra, true, &creds)?];
    let result = run(args, &nodes).await;
    drop(nodes);
    let _ = std::fs::remove_file(&key);
    result
}

async fn run(args: &Args, nodes: &[Server]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut known = 0;
        for n in nodes {
            known += usize::from(status(&n.addr).await?["cluster"]["peers"].as_array().map_or(0, Vec::len) == nodes.len());
        }
        if known == nodes.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the nodes did not see each other");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each node's router reads the members every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut s = connect(&nodes[0].addr).await?;
    create_role(&mut s).await.context("creating the execution role")?;
    let echo = std::fs::read(&args.echo).with_context(|| format!("reading {}", args.echo.display()))?;
    create(&mut s, "echo", "provided.al2023", "bootstrap", zip_files(&[("bootstrap", echo, 0o755)])?).await.context("creating echo")?;
    let cold = invoke(&mut s, "echo").await?;
    let home = if environments(&nodes[0].addr).await? > 0 { 0 } else { 1 };
    let other = 1 - home;
    if environments(&nodes[other].addr).await? > 0 {
        bail!("both nodes started an environment: nothing was forwarded");
    }
    let floor = crate::two_hop_floor()?;
    println!("\nthe first invoke (through node {}, the home being node {}): {}", 0, home, crate::ms(cold));
    println!("\n| warm invoke, provided echo, two nodes on PostgreSQL | p50 | p99 | invocations/s |");
    println!("|---|---|---|---|");
    for (label, addr) in [
        ("c=1, to the home node", nodes[home].addr.as_str()),
        ("c=1, to the other node (forwarded)", nodes[other].addr.as_str()),
        ("c=1, floor: two loopback hyper hops", floor.as_str()),
    ] {
        let mut s = connect(addr).await?;
        let path = "/2015-03-31/functions/echo/invocations";
        call(&mut s, "POST", path, Bytes::from_static(b"{}")).await?;
        let mut lat = Vec::with_capacity(args.requests);
        let started = Instant::now();
        for _ in 0..args.requests {
            let t = Instant::now();
            let (st, body) = call(&mut s, "POST", path, Bytes::from_static(b"{\"ping\":1}")).await?;
            if st != 200 {
                bail!("invoke through {addr}: {st} {}", String::from_utf8_lossy(&body));
            }
            lat.push(t.elapsed());
        }
        let rate = args.requests as f64 / started.elapsed().as_secs_f64();
        lat.sort();
        println!("| {label} | {} | {} | {rate:.0} |", us(pct(&lat, 0.5)), us(pct(&lat, 0.99)));
    }
    for (label, addr) in [("c=32, to the home node", &nodes[home].addr), ("c=32, to the other node (forwarded)", &nodes[other].addr)] {
        load(addr, "echo", 32, 1).await?;
        let (rps, p50, p99) = load(addr, "echo", 32, args.seconds).await?;
        println!("| {label} | {} | {} | {rps:.0} |", us(p50), us(p99));
    }
    // Function URL requests (GET, AuthType NONE), routed the same way.
    let id = crate::echo_url_id(&mut s).await.context("creating the echo function's URL")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let url_path = format!("/_aws/lambda-url/{id}/hello?x=1");
    println!("\n| function URL, provided echo, two nodes on PostgreSQL | p50 | p99 | requests/s |");
    println!("|---|---|---|---|");
    for c in [1, 32] {
        for (label, addr) in [("to the home node", &nodes[home].addr), ("to the other node (forwarded)", &nodes[other].addr)] {
            let (rps, p50, p99) = crate::load_path(addr, "GET", &url_path, b"", c, args.seconds).await?;
            println!("| c={c}, {label} | {} | {} | {rps:.0} |", us(p50), us(p99));
        }
    }
    let counts = &status(&nodes[other].addr).await?["cluster"]["invokes"];
    println!("\nthe other node forwarded {} invokes ({} ran there after a failed forward)", counts["forwarded"], counts["fellBack"]);
    Ok(())
}
