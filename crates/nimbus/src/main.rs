//! The `nimbus` binary: `nimbus server` runs the platform; the other subcommands are the
//! command-line client for the daily loop (deploy, invoke, logs) against a server's API.

mod bucket_events;
mod cli;
mod client;
mod drain;
mod install;
mod server;
mod service_metrics;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "nimbus", version, about = "A self-hosted serverless function platform that speaks the AWS Lambda API")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Options shared by the client subcommands.
#[derive(clap::Args, Clone)]
pub struct ClientOpts {
    /// The Nimbus server to talk to.
    #[arg(long, env = "NIMBUS_ENDPOINT", default_value = "http://127.0.0.1:9001", global = true)]
    pub endpoint: String,
    /// Certificates (PEM) to trust for an https:// endpoint instead of the system's roots.
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "PATH", global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: Output,
}

#[derive(Subcommand)]
enum RuntimesCommand {
    /// Install into the data directory's runtime store: a Node.js runtime (`nodejs22.x`:
    /// its official build from the npm registry, and the AWS SDK for JavaScript v3), a
    /// Python runtime (the host's interpreter, and boto3 from PyPI), or `sdk` (both SDKs).
    /// Downloads are checked against their checksums; the server finds the result at start.
    Install {
        /// Runtime ids (nodejs20.x, nodejs22.x, nodejs24.x, python3.11, ...) or `sdk`.
        #[arg(required = true, value_name = "RUNTIME|sdk")]
        targets: Vec<String>,
        /// The server's data directory.
        #[arg(long, env = "NIMBUS_DATA", default_value = "./.nimbus")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the Nimbus server.
    Server(Box<server::ServerOpts>),
    /// List the runtimes, the interpreters that run them and the AWS SDKs they provide.
    Runtimes {
        #[command(subcommand)]
        command: Option<RuntimesCommand>,
        #[arg(long = "runtime-path", value_name = "RUNTIME=PATH")]
        runtime_paths: Vec<String>,
        /// The server's data directory (its runtime store is `<data>/runtimes`).
        #[arg(long, env = "NIMBUS_DATA", default_value = "./.nimbus")]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Zip a folder and create or update a function from it, or take its zip from a
    /// bucket with `--s3 BUCKET/KEY`.
    Deploy {
        /// The folder to zip (not with --s3).
        #[arg(required_unless_present = "s3")]
        dir: Option<PathBuf>,
        /// Deploy the zip at BUCKET/KEY (or s3://BUCKET/KEY) in one of the account's
        /// buckets instead of a local folder: the server reads it (the caller needs
        /// s3:GetObject on it), and a zip from S3 may be over the 50 MB of a direct upload,
        /// up to 250 MB unzipped.
        #[arg(long, value_name = "BUCKET/KEY", conflicts_with = "dir")]
        s3: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long)]
        runtime: Option<String>,
        #[arg(long)]
        handler: Option<String>,
        #[arg(long)]
        memory: Option<u32>,
        #[arg(long)]
        timeout: Option<u32>,
        /// Environment variable, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The execution role's ARN. Without it, a new function gets the role
        /// `nimbus-function` (created on first use with Lambda's basic execution policy, as
        /// the AWS console does).
        #[arg(long)]
        role: Option<String>,
        /// A layer version ARN to mount under /opt (repeatable, in order; replaces the
        /// function's list).
        #[arg(long = "layer", value_name = "ARN")]
        layers: Vec<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Invoke a function and print its result.
    Invoke {
        name: String,
        /// JSON payload, or @file to read it from a file.
        payload: Option<String>,
        /// Print the invocation's log tail to stderr.
        #[arg(long)]
        logs: bool,
        /// Invoke asynchronously (InvocationType Event): print the request id and return.
        #[arg(long = "async", conflicts_with = "logs")]
        asynchronous: bool,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List event source mappings (optionally of one function) with their state.
    Mappings {
        function: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Built-in SNS topics.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Built-in SQS queues.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// The nodes sharing this server's store (`--store postgres://…`).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// List functions.
    Ls {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Print a function's logs.
    Logs {
        name: String,
        /// Keep printing new lines as they arrive.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Print a one-time login link to the web console (signed in as the account's root),
    /// good for 15 minutes. Only the newest link works: this one replaces any unused one,
    /// such as the link the server printed at start. Takes the administrator's key.
    Console {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Internal: isolates one execution environment, then runs its runtime (started by
    /// the server, never by hand).
    #[command(hide = true, name = "sandbox-init")]
    SandboxInit,
    /// Internal: forks sandbox-init for a running server (started by the server).
    #[command(hide = true, name = "sandbox-spawner")]
    SandboxSpawner,
    /// Publish $LATEST as a new version.
    Publish {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List a function's versions.
    Versions {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Manage layers.
    Layer {
        #[command(subcommand)]
        command: LayerCommand,
    },
    /// Manage aliases.
    Alias {
        #[command(subcommand)]
        command: AliasCommand,
    },
    /// Delete a function.
    Rm {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum TopicCommand {
    /// List topics.
    Ls {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Create a topic.
    Create {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Subscribe an endpoint: PROTOCOL is lambda, sqs, http or https; ENDPOINT an ARN or URL.
    /// A queue's policy is given a statement that lets the topic send to it.
    Subscribe {
        name: String,
        protocol: String,
        #[arg(value_name = "ENDPOINT")]
        target: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Publish a message.
    Publish {
        name: String,
        message: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// List the live nodes: endpoint, age, last heartbeat and the async events each holds.
    Ls {
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queues with their message counts.
    Ls {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Create a queue (a name ending in .fifo makes a FIFO queue).
    Create {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Send a message.
    Send {
        name: String,
        body: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Receive (and delete) up to MAX messages, printing their bodies.
    Receive {
        name: String,
        #[arg(long, default_value_t = 1)]
        max: u32,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum LayerCommand {
    /// Zip a folder and publish it as a new version of a layer.
    Publish {
        name: String,
        dir: PathBuf,
        /// A compatible runtime (repeatable).
        #[arg(long = "runtime")]
        runtimes: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List a layer's versions.
    Ls {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Create or move an alias: TARGET is a version, $LATEST, or another alias.
    Set {
        function: String,
        name: String,
        target: String,
        /// Send a share of invocations to another version, e.g. --weight 2=0.1.
        #[arg(long, value_name = "VERSION=WEIGHT")]
        weight: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List a function's aliases.
    Ls {
        function: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Delete an alias.
    Rm {
        function: String,
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

fn main() -> std::process::ExitCode {
    // sandbox-init sits on every sandboxed cold start: dispatch it before building the CLI.
    match std::env::args_os().nth(1) {
        Some(a) if a == "sandbox-init" => return std::process::ExitCode::from(nimbus_sandbox::jail::init_main().clamp(0, 255) as u8),
        // The small process that forks sandbox-init for a running server.
        Some(a) if a == "sandbox-spawner" => return std::process::ExitCode::from(nimbus_sandbox::jail::spawner_main().clamp(0, 255) as u8),
        _ => {}
    }
    let args = Args::parse();
    let result = match args.command {
        Command::Server(opts) => server::run(*opts),
        Command::Runtimes { command: None, runtime_paths, data, output } => server::print_runtimes(&data, &runtime_paths, output),
        Command::Runtimes { command: Some(RuntimesCommand::Install { targets, data }), .. } => {
            install::run(&data, &targets, install::Sources::from_env())
        }
        Command::Deploy { dir, s3, name, runtime, handler, memory, timeout, env, role, layers, client } => {
            cli::run(client, cli::Deploy { dir, s3, name, runtime, handler, memory, timeout, env, role, layers }.into())
        }
        Command::Invoke { name, payload, logs, asynchronous, client } => {
            cli::run(client, cli::Cmd::Invoke { name, payload, logs, asynchronous })
        }
        Command::Mappings { function, client } => cli::run(client, cli::Cmd::Mappings { function }),
        Command::Topic { command } => match command {
            TopicCommand::Ls { client } => cli::run(client, cli::Cmd::TopicLs),
            TopicCommand::Create { name, client } => cli::run(client, cli::Cmd::TopicCreate { name }),
            TopicCommand::Subscribe { name, protocol, target, client } => {
                cli::run(client, cli::Cmd::TopicSubscribe { name, protocol, endpoint: target })
            }
            TopicCommand::Publish { name, message, client } => cli::run(client, cli::Cmd::TopicPublish { name, message }),
        },
        Command::Queue { command } => match command {
            QueueCommand::Ls { client } => cli::run(client, cli::Cmd::QueueLs),
            QueueCommand::Create { name, client } => cli::run(client, cli::Cmd::QueueCreate { name }),
            QueueCommand::Send { name, body, client } => cli::run(client, cli::Cmd::QueueSend { name, body }),
            QueueCommand::Receive { name, max, client } => cli::run(client, cli::Cmd::QueueReceive { name, max }),
        },
        Command::Cluster { command: ClusterCommand::Ls { client } } => cli::run(client, cli::Cmd::ClusterLs),
        Command::Ls { client } => cli::run(client, cli::Cmd::Ls),
        Command::Console { client } => cli::run(client, cli::Cmd::Console),
        Command::Logs { name, follow, client } => cli::run(client, cli::Cmd::Logs { name, follow }),
        Command::Rm { name, client } => cli::run(client, cli::Cmd::Rm { name }),
        Command::Publish { name, description, client } => cli::run(client, cli::Cmd::Publish { name, description }),
        Command::Versions { name, client } => cli::run(client, cli::Cmd::Versions { name }),
        Command::Layer { command } => match command {
            LayerCommand::Publish { name, dir, runtimes, description, client } => {
                cli::run(client, cli::Cmd::LayerPublish { name, dir, runtimes, description })
            }
            LayerCommand::Ls { name, client } => cli::run(client, cli::Cmd::LayerLs { name }),
        },
        Command::Alias { command } => match command {
            AliasCommand::Set { function, name, target, weight, client } => {
                cli::run(client, cli::Cmd::AliasSet { function, name, target, weight })
            }
            AliasCommand::Ls { function, client } => cli::run(client, cli::Cmd::AliasLs { function }),
            AliasCommand::Rm { function, name, client } => cli::run(client, cli::Cmd::AliasRm { function, name }),
        },
        Command::SandboxInit | Command::SandboxSpawner => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Args::command().debug_assert();
    }
}
