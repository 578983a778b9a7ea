//! The client subcommands: deploy, invoke, ls, logs, rm, console (a login link to the web
//! console). Readable output by default, `--output json` for scripts.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use serde_json::{json, Value};

use crate::client::Api;
use crate::{ClientOpts, Output};

pub struct Deploy {
    /// The folder to zip; None with `s3`.
    pub dir: Option<PathBuf>,
    /// `BUCKET/KEY` (or `s3://BUCKET/KEY`): a zip already in a bucket of the account.
    pub s3: Option<String>,
    pub name: String,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory: Option<u32>,
    pub timeout: Option<u32>,
    pub env: Vec<String>,
    pub role: Option<String>,
    pub layers: Vec<String>,
}

pub enum Cmd {
    Deploy(Box<Deploy>),
    Invoke { name: String, payload: Option<String>, logs: bool, asynchronous: bool },
    Mappings { function: Option<String> },
    TopicLs,
    ClusterLs,
    TopicCreate { name: String },
    TopicSubscribe { name: String, protocol: String, endpoint: String },
    TopicPublish { name: String, message: String },
    QueueLs,
    QueueCreate { name: String },
    QueueSend { name: String, body: String },
    QueueReceive { name: String, max: u32 },
    Ls,
    Console,
    Logs { name: String, follow: bool },
    Rm { name: String },
    Publish { name: String, description: Option<String> },
    Versions { name: String },
    AliasSet { function: String, name: String, target: String, weight: Option<String> },
    AliasLs { function: String },
    AliasRm { function: String, name: String },
    LayerPublish { name: String, dir: PathBuf, runtimes: Vec<String>, description: Option<String> },
    LayerLs { name: String },
}

impl From<Deploy> for Cmd {
    fn from(d: Deploy) -> Cmd {
        Cmd::Deploy(Box::new(d))
    }
}

/// Lets the topic `topic_arn` send to the queue `queue_arn`, as the SQS console does when it
/// subscribes a queue to a topic: a statement for `sns.amazonaws.com` with the topic as
/// `aws:SourceArn` is added to the queue's `Policy` (kept as it is if one already names it).
async fn let_topic_send(api: &Api, topic_arn: &str, queue_arn: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = queue_arn.split(':').collect();
    let [_, _, "sqs", _, account, queue] = parts.as_slice() else { return Err(anyhow!("{queue_arn} is not a queue ARN")) };
    let url = api.sqs("GetQueueUrl", json!({ "QueueName": queue, "QueueOwnerAWSAccountId": account })).await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let attrs = api.sqs("GetQueueAttributes", json!({ "QueueUrl": url, "AttributeNames": ["Policy"] })).await?;
    let mut policy: serde_json::Value = match attrs["Attributes"]["Policy"].as_str() {
        Some(text) => serde_json::from_str(text).map_err(|e| anyhow!("the queue's policy is not JSON: {e}"))?,
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
    };
    if policy.to_string().contains(topic_arn) {
        return Ok(());
    }
    let statement = json!({
        "Sid": format!("topic-{}", topic_arn.rsplit(':').next().unwrap_or_default()),
        "Effect": "Allow",
        "Principal": { "Service": "sns.amazonaws.com" },
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
    });
    match &mut policy["Statement"] {
        serde_json::Value::Array(list) => list.push(statement),
        single @ serde_json::Value::Object(_) => *single = json!([single.take(), statement]),
        other => *other = json!([statement]),
    }
    api.sqs("SetQueueAttributes", json!({ "QueueUrl": url, "Attributes": { "Policy": policy.to_string() } })).await?;
    eprintln!("the queue's policy now lets {topic_arn} send to it");
    Ok(())
}

pub fn run(opts: ClientOpts, cmd: Cmd) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let api = Api::new(&opts.endpoint, opts.ca_bundle.as_deref())?;
        match cmd {
            Cmd::Deploy(d) => deploy(&api, *d, opts.output).await,
            Cmd::Invoke { name, payload, logs, asynchronous } => invoke(&api, &name, payload, logs, asynchronous, opts.output).await,
            Cmd::Mappings { function } => mappings(&api, function.as_deref(), opts.output).await,
            Cmd::TopicLs => {
                let xml = api.sns("ListTopics", &[]).await?;
                let arns = xml_values(&xml, "TopicArn");
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&arns)?);
                } else {
                    for a in arns {
                        println!("{a}");
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::TopicCreate { name } => {
                let xml = api.sns("CreateTopic", &[("Name", &name)]).await?;
                println!("{}", xml_values(&xml, "TopicArn").first().cloned().unwrap_or_default());
                Ok(ExitCode::SUCCESS)
            }
            Cmd::TopicSubscribe { name, protocol, endpoint } => {
                let arn = topic_arn(&api, &name).await?;
                if protocol == "sqs" {
                    let_topic_send(&api, &arn, &endpoint).await?;
                }
                let xml = api
                    .sns(
                        "Subscribe",
                        &[("TopicArn", &arn), ("Protocol", &protocol), ("Endpoint", &endpoint), ("ReturnSubscriptionArn", "true")],
                    )
                    .await?;
                println!("{}", xml_values(&xml, "SubscriptionArn").first().cloned().unwrap_or_default());
                Ok(ExitCode::SUCCESS)
            }
            Cmd::TopicPublish { name, message } => {
                let arn = topic_arn(&api, &name).await?;
                let xml = api.sns("Publish", &[("TopicArn", &arn), ("Message", &message)]).await?;
                println!("{}", xml_values(&xml, "MessageId").first().cloned().unwrap_or_default());
                Ok(ExitCode::SUCCESS)
            }
            Cmd::QueueLs => {
                let list = api.sqs("ListQueues", json!({})).await?;
                let urls: Vec<String> =
                    list["QueueUrls"].as_array().into_iter().flatten().filter_map(|u| u.as_str().map(str::to_string)).collect();
                let mut rows = Vec::new();
                for url in &urls {
                    let a = api.sqs("GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["All"]})).await?;
                    rows.push(json!({"QueueUrl": url, "Attributes": a["Attributes"]}));
                }
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    println!("{:<60} {:>9} {:>9}", "QUEUE", "VISIBLE", "IN FLIGHT");
                    for r in &rows {
                        println!(
                            "{:<60} {:>9} {:>9}",
                            r["QueueUrl"].as_str().unwrap_or(""),
                            r["Attributes"]["ApproximateNumberOfMessages"].as_str().unwrap_or("0"),
                            r["Attributes"]["ApproximateNumberOfMessagesNotVisible"].as_str().unwrap_or("0")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::QueueCreate { name } => {
                let mut input = json!({ "QueueName": name });
                if name.ends_with(".fifo") {
                    input["Attributes"] = json!({ "FifoQueue": "true", "ContentBasedDeduplication": "true" });
                }
                let r = api.sqs("CreateQueue", input).await?;
                println!("{}", r["QueueUrl"].as_str().unwrap_or(""));
                Ok(ExitCode::SUCCESS)
            }
            Cmd::QueueSend { name, body } => {
                let url = api.sqs("GetQueueUrl", json!({ "QueueName": name })).await?["QueueUrl"].as_str().unwrap_or("").to_string();
                let mut input = json!({ "QueueUrl": url, "MessageBody": body });
                if name.ends_with(".fifo") {
                    input["MessageGroupId"] = json!("nimbus-cli");
                }
                let r = api.sqs("SendMessage", input).await?;
                println!("{}", r["MessageId"].as_str().unwrap_or(""));
                Ok(ExitCode::SUCCESS)
            }
            Cmd::QueueReceive { name, max } => {
                let url = api.sqs("GetQueueUrl", json!({ "QueueName": name })).await?["QueueUrl"].as_str().unwrap_or("").to_string();
                let r = api
                    .sqs("ReceiveMessage", json!({ "QueueUrl": url, "MaxNumberOfMessages": max.clamp(1, 10), "WaitTimeSeconds": 1 }))
                    .await?;
                for m in r["Messages"].as_array().into_iter().flatten() {
                    println!("{}", m["Body"].as_str().unwrap_or(""));
                    api.sqs("DeleteMessage", json!({ "QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"] })).await?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Ls => ls(&api, opts.output).await,
            Cmd::ClusterLs => {
                let status = api.call("GET", "/_nimbus/status", &[], Vec::new()).await?.ok()?.json()?;
                let cluster = &status["cluster"];
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(cluster)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let Some(peers) = cluster["peers"].as_array() else {
                    eprintln!("this server is not part of a cluster (it keeps its records in its data directory)");
                    return Ok(ExitCode::SUCCESS);
                };
                let now = chrono::Utc::now().timestamp_millis();
                println!("{:<26} {:<32} {:>10} {:>10} {:>6}", "NODE", "ENDPOINT", "UP", "HEARTBEAT", "EVENTS");
                for p in peers {
                    let up = (now - p["startedMs"].as_i64().unwrap_or(now)).max(0) / 1000;
                    let me = if p["thisNode"].as_bool() == Some(true) { " *" } else { "" };
                    println!(
                        "{:<26} {:<32} {:>9}s {:>8}ms {:>6}",
                        format!("{}{me}", p["node"].as_str().unwrap_or("")),
                        p["endpoint"].as_str().unwrap_or(""),
                        up,
                        p["heartbeatAgeMs"].as_i64().unwrap_or(0),
                        p["asyncEventsHeld"].as_i64().unwrap_or(0)
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Console => {
                // Signed with the administrator's key, as every call of the CLI.
                let link = api.call("POST", "/_nimbus/console/link", &[], b"{}".to_vec()).await?.ok()?.json()?;
                let url = link["url"].as_str().ok_or_else(|| anyhow!("the server's answer has no url"))?;
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&link)?);
                } else {
                    println!("{url}");
                    eprintln!("open it within 15 minutes: it signs you in once as the account's root, then stops working");
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Logs { name, follow } => logs(&api, &name, follow, opts.output).await,
            Cmd::Publish { name, description } => {
                let body = match description {
                    Some(d) => json!({ "Description": d }),
                    None => json!({}),
                };
                let v = api
                    .call("POST", &format!("/2015-03-31/functions/{name}/versions"), &[], serde_json::to_vec(&body)?)
                    .await?
                    .ok()?
                    .json()?;
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!(
                        "published {name} version {} ({})",
                        v["Version"].as_str().unwrap_or(""),
                        v["CodeSha256"].as_str().unwrap_or("")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Versions { name } => {
                let mut all = Vec::new();
                let mut marker: Option<String> = None;
                loop {
                    let path = match &marker {
                        Some(m) => format!("/2015-03-31/functions/{name}/versions?Marker={m}"),
                        None => format!("/2015-03-31/functions/{name}/versions"),
                    };
                    let page = api.call("GET", &path, &[], vec![]).await?.ok()?.json()?;
                    all.extend(page["Versions"].as_array().cloned().unwrap_or_default());
                    match page["NextMarker"].as_str() {
                        Some(m) => marker = Some(m.to_string()),
                        None => break,
                    }
                }
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    println!("{:<10} {:<46} {:<30} DESCRIPTION", "VERSION", "CODE SHA256", "LAST MODIFIED");
                    for v in &all {
                        println!(
                            "{:<10} {:<46} {:<30} {}",
                            v["Version"].as_str().unwrap_or(""),
                            v["CodeSha256"].as_str().unwrap_or(""),
                            v["LastModified"].as_str().unwrap_or(""),
                            v["Description"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::AliasSet { function, name, target, weight } => {
                let mut body = json!({ "FunctionVersion": target });
                if let Some(w) = &weight {
                    let (v, share) = w.split_once('=').ok_or_else(|| anyhow!("--weight wants VERSION=WEIGHT, got {w}"))?;
                    let share: f64 = share.parse().map_err(|_| anyhow!("weight {share} is not a number"))?;
                    body["RoutingConfig"] = json!({ "AdditionalVersionWeights": { v: share } });
                } else {
                    body["RoutingConfig"] = json!({ "AdditionalVersionWeights": {} });
                }
                let path = format!("/2015-03-31/functions/{function}/aliases/{name}");
                let exists = api.call("GET", &path, &[], vec![]).await?.status == 200;
                let a = if exists {
                    api.call("PUT", &path, &[], serde_json::to_vec(&body)?).await?.ok()?.json()?
                } else {
                    body["Name"] = json!(name);
                    if weight.is_none() {
                        body.as_object_mut().map(|o| o.remove("RoutingConfig"));
                    }
                    api.call("POST", &format!("/2015-03-31/functions/{function}/aliases"), &[], serde_json::to_vec(&body)?)
                        .await?
                        .ok()?
                        .json()?
                };
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&a)?);
                } else {
                    println!(
                        "{} {function}:{name} -> {}{}",
                        if exists { "moved" } else { "created" },
                        a["FunctionVersion"].as_str().unwrap_or(""),
                        weight.map(|w| format!(" (+{w})")).unwrap_or_default()
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::AliasLs { function } => {
                let page = api.call("GET", &format!("/2015-03-31/functions/{function}/aliases"), &[], vec![]).await?.ok()?.json()?;
                let aliases = page["Aliases"].as_array().cloned().unwrap_or_default();
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&aliases)?);
                } else {
                    println!("{:<24} {:<12} {:<16} DESCRIPTION", "ALIAS", "TARGET", "WEIGHTS");
                    for a in &aliases {
                        let weights = a["RoutingConfig"]["AdditionalVersionWeights"]
                            .as_object()
                            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
                            .unwrap_or_default();
                        println!(
                            "{:<24} {:<12} {:<16} {}",
                            a["Name"].as_str().unwrap_or(""),
                            a["FunctionVersion"].as_str().unwrap_or(""),
                            weights,
                            a["Description"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::LayerPublish { name, dir, runtimes, description } => {
                if !dir.is_dir() {
                    bail!("{} is not a directory", dir.display());
                }
                let (zip, count) = zip_dir(&dir)?;
                if opts.output == Output::Text {
                    eprintln!("zipped {count} files from {} ({} KB)", dir.display(), zip.len().div_ceil(1024));
                }
                let mut body = json!({ "Content": { "ZipFile": base64::engine::general_purpose::STANDARD.encode(&zip) } });
                if !runtimes.is_empty() {
                    body["CompatibleRuntimes"] = json!(runtimes);
                }
                if let Some(d) = description {
                    body["Description"] = json!(d);
                }
                let l = api
                    .call("POST", &format!("/2018-10-31/layers/{name}/versions"), &[], serde_json::to_vec(&body)?)
                    .await?
                    .ok()?
                    .json()?;
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&l)?);
                } else {
                    println!("published {}", l["LayerVersionArn"].as_str().unwrap_or(""));
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::LayerLs { name } => {
                let page = api.call("GET", &format!("/2018-10-31/layers/{name}/versions"), &[], vec![]).await?.ok()?.json()?;
                let versions = page["LayerVersions"].as_array().cloned().unwrap_or_default();
                if opts.output == Output::Json {
                    println!("{}", serde_json::to_string_pretty(&versions)?);
                } else {
                    for v in &versions {
                        println!(
                            "{:<6} {:<70} {}",
                            v["Version"],
                            v["LayerVersionArn"].as_str().unwrap_or(""),
                            v["Description"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::AliasRm { function, name } => {
                api.call("DELETE", &format!("/2015-03-31/functions/{function}/aliases/{name}"), &[], vec![]).await?.ok()?;
                println!("deleted alias {function}:{name}");
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Rm { name } => {
                api.call("DELETE", &format!("/2015-03-31/functions/{name}"), &[], vec![]).await?.ok()?;
                if opts.output == Output::Json {
                    println!("{}", json!({"deleted": name}));
                } else {
                    println!("deleted {name}");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// Zips a folder, keeping executable bits (a `bootstrap` must stay executable).
fn zip_dir(dir: &Path) -> anyhow::Result<(Vec<u8>, usize)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for path in &files {
        let rel = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(mode);
        w.start_file(rel, opts)?;
        w.write_all(&std::fs::read(path)?)?;
    }
    Ok((w.finish()?.into_inner(), files.len()))
}

/// The role `deploy` gives a new function when none is named: `nimbus-function`, trusting
/// Lambda with `AWSLambdaBasicExecutionRole` attached, created the first time it is needed.
const DEFAULT_ROLE: &str = "nimbus-function";

async fn default_role(api: &Api, text: bool) -> anyhow::Result<String> {
    if let Ok(xml) = api.iam("GetRole", &[("RoleName", DEFAULT_ROLE)]).await {
        return Ok(crate::client::xml_text(&xml, "Arn"));
    }
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let xml = api
        .iam("CreateRole", &[("RoleName", DEFAULT_ROLE), ("AssumeRolePolicyDocument", trust), ("Description", "Created by nimbus deploy")])
        .await
        .context("creating the default execution role")?;
    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    api.iam("AttachRolePolicy", &[("RoleName", DEFAULT_ROLE), ("PolicyArn", basic)]).await?;
    if text {
        eprintln!("created the execution role {DEFAULT_ROLE} (basic Lambda permissions)");
    }
    Ok(crate::client::xml_text(&xml, "Arn"))
}

/// Where `--s3` says a zip is: `BUCKET/KEY` or `s3://BUCKET/KEY` → (bucket, key).
fn s3_location(spec: &str) -> anyhow::Result<(String, String)> {
    let path = spec.strip_prefix("s3://").unwrap_or(spec);
    match path.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket.to_string(), key.to_string())),
        _ => bail!("--s3 wants BUCKET/KEY (or s3://BUCKET/KEY), got {spec}"),
    }
}

/// The code members of CreateFunction's `Code` (and of UpdateFunctionCode's body): the
/// folder zipped into `ZipFile`, or `S3Bucket`/`S3Key` for `--s3`.
fn code_members(d: &Deploy, text: bool) -> anyhow::Result<Value> {
    if let Some(spec) = &d.s3 {
        let (bucket, key) = s3_location(spec)?;
        if text {
            eprintln!("code from s3://{bucket}/{key}");
        }
        return Ok(json!({ "S3Bucket": bucket, "S3Key": key }));
    }
    let dir = d.dir.as_deref().ok_or_else(|| anyhow!("deploy needs a folder to zip or --s3 BUCKET/KEY"))?;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let (zip, count) = zip_dir(dir)?;
    if text {
        eprintln!("zipped {count} files from {} ({} KB)", dir.display(), zip.len().div_ceil(1024));
    }
    Ok(json!({ "ZipFile": base64::engine::general_purpose::STANDARD.encode(&zip) }))
}

async fn deploy(api: &Api, d: Deploy, output: Output) -> anyhow::Result<ExitCode> {
    let text = output == Output::Text;
    let code = code_members(&d, text)?;
    let mut env = serde_json::Map::new();
    for kv in &d.env {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--env wants KEY=VALUE, got {kv}"))?;
        env.insert(k.to_string(), Value::String(v.to_string()));
    }
    let path = format!("/2015-03-31/functions/{}", d.name);
    let exists = api.call("GET", &path, &[], vec![]).await?.status == 200;
    let config = if exists {
        if text {
            eprintln!("updating code of {}…", d.name);
        }
        api.call("PUT", &format!("{path}/code"), &[], serde_json::to_vec(&code)?).await?.ok()?;
        let mut change = serde_json::Map::new();
        if let Some(r) = &d.runtime {
            change.insert("Runtime".into(), json!(r));
        }
        if let Some(h) = &d.handler {
            change.insert("Handler".into(), json!(h));
        }
        if let Some(m) = d.memory {
            change.insert("MemorySize".into(), json!(m));
        }
        if let Some(t) = d.timeout {
            change.insert("Timeout".into(), json!(t));
        }
        if !d.env.is_empty() {
            change.insert("Environment".into(), json!({ "Variables": env }));
        }
        if !d.layers.is_empty() {
            change.insert("Layers".into(), json!(d.layers));
        }
        if text && !change.is_empty() {
            eprintln!("updating configuration of {}…", d.name);
        }
        api.call("PUT", &format!("{path}/configuration"), &[], serde_json::to_vec(&Value::Object(change))?).await?.ok()?.json()?
    } else {
        let runtime = d.runtime.ok_or_else(|| anyhow!("--runtime is needed to create {}", d.name))?;
        let handler =
            d.handler.unwrap_or_else(|| if runtime.starts_with("provided") { "bootstrap".into() } else { "index.handler".into() });
        let role = match d.role {
            Some(role) => role,
            None => default_role(api, text).await?,
        };
        if text {
            eprintln!("creating {}…", d.name);
        }
        let mut body = json!({
            "FunctionName": d.name,
            "Runtime": runtime,
            "Handler": handler,
            "Role": role,
            "Code": code,
        });
        if let Some(m) = d.memory {
            body["MemorySize"] = json!(m);
        }
        if let Some(t) = d.timeout {
            body["Timeout"] = json!(t);
        }
        if !env.is_empty() {
            body["Environment"] = json!({ "Variables": env });
        }
        if !d.layers.is_empty() {
            body["Layers"] = json!(d.layers);
        }
        api.call("POST", "/2015-03-31/functions", &[], serde_json::to_vec(&body)?).await?.ok()?.json()?
    };
    if text {
        println!(
            "{} {} ({}, {}, {} MB, {} s) sha256 {}",
            if exists { "updated" } else { "created" },
            config["FunctionName"].as_str().unwrap_or(""),
            config["Runtime"].as_str().unwrap_or(""),
            config["Handler"].as_str().unwrap_or(""),
            config["MemorySize"],
            config["Timeout"],
            config["CodeSha256"].as_str().unwrap_or("")
        );
    } else {
        println!("{}", serde_json::to_string_pretty(&config)?);
    }
    // A function that cannot run here (no interpreter for its runtime) is deployed but
    // Failed: say why and how to fix it, and exit non-zero so scripts notice.
    if config["State"] == "Failed" || config["LastUpdateStatus"] == "Failed" {
        let code = config["StateReasonCode"].as_str().or(config["LastUpdateStatusReasonCode"].as_str()).unwrap_or("");
        let reason = config["StateReason"].as_str().or(config["LastUpdateStatusReason"].as_str()).unwrap_or("");
        eprintln!("{} is Failed ({code}): {reason}", config["FunctionName"].as_str().unwrap_or(&d.name));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn mappings(api: &Api, function: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let path = match function {
        Some(f) => format!("/2015-03-31/event-source-mappings/?FunctionName={f}"),
        None => "/2015-03-31/event-source-mappings/".to_string(),
    };
    let page = api.call("GET", &path, &[], vec![]).await?.ok()?.json()?;
    let list = page["EventSourceMappings"].as_array().cloned().unwrap_or_default();
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<38} {:<10} {:<40} {:<30} {:>6}  LAST RESULT", "UUID", "STATE", "QUEUE", "FUNCTION", "BATCH");
    for m in &list {
        println!(
            "{:<38} {:<10} {:<40} {:<30} {:>6}  {}",
            m["UUID"].as_str().unwrap_or(""),
            m["State"].as_str().unwrap_or(""),
            m["EventSourceArn"].as_str().unwrap_or("").rsplit(':').next().unwrap_or(""),
            m["FunctionArn"].as_str().unwrap_or("").split(":function:").nth(1).unwrap_or(""),
            m["BatchSize"],
            m["LastProcessingResult"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn invoke(
    api: &Api,
    name: &str,
    payload: Option<String>,
    logs: bool,
    asynchronous: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let body = match payload.as_deref() {
        None => b"{}".to_vec(),
        Some(p) => match p.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("reading {file}"))?,
            None => p.as_bytes().to_vec(),
        },
    };
    if asynchronous {
        let a = api
            .call("POST", &format!("/2015-03-31/functions/{name}/invocations"), &[("x-amz-invocation-type", "Event")], body)
            .await?
            .ok()?;
        let id = a.headers.get("x-amzn-requestid").and_then(|v| v.to_str().ok()).unwrap_or("");
        if output == Output::Json {
            println!("{}", json!({ "StatusCode": a.status, "RequestId": id }));
        } else {
            println!("accepted ({id})");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut headers = vec![("x-amz-invocation-type", "RequestResponse")];
    if logs {
        headers.push(("x-amz-log-type", "Tail"));
    }
    let a = api.call("POST", &format!("/2015-03-31/functions/{name}/invocations"), &headers, body).await?.ok()?;
    let failed = a.headers.get("x-amz-function-error").is_some();
    if logs {
        if let Some(tail) = a.headers.get("x-amz-log-result").and_then(|v| v.to_str().ok()) {
            let text = base64::engine::general_purpose::STANDARD.decode(tail).unwrap_or_default();
            eprint!("{}", String::from_utf8_lossy(&text));
        }
    }
    if output == Output::Json {
        let payload: Value = serde_json::from_slice(&a.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&a.body).into()));
        println!(
            "{}",
            json!({
                "StatusCode": a.status,
                "FunctionError": a.headers.get("x-amz-function-error").and_then(|v| v.to_str().ok()),
                "ExecutedVersion": a.headers.get("x-amz-executed-version").and_then(|v| v.to_str().ok()),
                "Payload": payload,
            })
        );
    } else {
        std::io::stdout().write_all(&a.body)?;
        println!();
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn ls(api: &Api, output: Output) -> anyhow::Result<ExitCode> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let path = match &marker {
            Some(m) => format!("/2015-03-31/functions/?Marker={m}"),
            None => "/2015-03-31/functions/".to_string(),
        };
        let page = api.call("GET", &path, &[], vec![]).await?.ok()?.json()?;
        all.extend(page["Functions"].as_array().cloned().unwrap_or_default());
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_string()),
            None => break,
        }
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<32} {:<16} {:<24} {:>7} {:>8}  LAST MODIFIED", "NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT");
    for f in &all {
        println!(
            "{:<32} {:<16} {:<24} {:>7} {:>8}  {}",
            f["FunctionName"].as_str().unwrap_or(""),
            f["Runtime"].as_str().unwrap_or(""),
            f["Handler"].as_str().unwrap_or(""),
            format!("{} MB", f["MemorySize"]),
            format!("{} s", f["Timeout"]),
            f["LastModified"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(api: &Api, name: &str, follow: bool, output: Output) -> anyhow::Result<ExitCode> {
    // The function's LoggingConfig.LogGroup; its default group if it cannot be read.
    let config = api.call("GET", &format!("/2015-03-31/functions/{name}/configuration"), &[], vec![]).await?;
    let group = match config.ok().and_then(|r| r.json()) {
        Ok(c) => c["LoggingConfig"]["LogGroup"].as_str().map(str::to_string),
        Err(_) => None,
    }
    .unwrap_or_else(|| format!("/aws/lambda/{name}"));
    let mut seen = std::collections::HashSet::new();
    let mut since: Option<i64> = None;
    loop {
        let mut input = json!({ "logGroupName": group });
        if let Some(t) = since {
            input["startTime"] = json!(t);
        }
        let events = match api.logs("FilterLogEvents", input).await {
            Ok(v) => v["events"].as_array().cloned().unwrap_or_default(),
            Err(e) if e.to_string().starts_with("ResourceNotFoundException") && follow => Vec::new(),
            Err(e) => return Err(e),
        };
        for e in events {
            let id = e["eventId"].as_str().unwrap_or("").to_string() + e["logStreamName"].as_str().unwrap_or("");
            if !seen.insert(id) {
                continue;
            }
            let ts = e["timestamp"].as_i64().unwrap_or(0);
            since = Some(since.map_or(ts, |s| s.max(ts)));
            if output == Output::Json {
                println!("{e}");
            } else {
                let when = chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                println!("{when} {}", e["message"].as_str().unwrap_or("").trim_end());
            }
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A topic's ARN from its name (or the ARN itself).
async fn topic_arn(api: &Api, name: &str) -> anyhow::Result<String> {
    if name.starts_with("arn:") {
        return Ok(name.to_string());
    }
    let xml = api.sns("ListTopics", &[]).await?;
    xml_values(&xml, "TopicArn").into_iter().find(|a| a.rsplit(':').next() == Some(name)).ok_or_else(|| anyhow!("no topic named {name}"))
}

/// The text of every `<tag>…</tag>` in an SNS XML answer (unescaped).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&"));
        rest = &after[j + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_are_bucket_and_key() {
        let ok = |b: &str, k: &str| Some((b.to_string(), k.to_string()));
        let cases = [
            ("bkt/app.zip", ok("bkt", "app.zip")),
            ("s3://bkt/app.zip", ok("bkt", "app.zip")),
            ("bkt/builds/v2/app.zip", ok("bkt", "builds/v2/app.zip")),
            ("bkt", None),
            ("bkt/", None),
            ("/app.zip", None),
            ("s3://", None),
        ];
        for (spec, want) in cases {
            assert_eq!(s3_location(spec).ok(), want, "{spec}");
        }
    }
}
