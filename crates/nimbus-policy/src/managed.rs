//! The AWS managed policies Lambda users attach, with their real documents, so a role that
//! names `arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole` means in Nimbus
//! what it means in AWS.
//!
//! Documents and default versions are AWS's (AWS Managed Policy Reference; the stored text is
//! the policy versions' `Document` as IAM's GetPolicyVersion returns it, taken from a snapshot
//! of March 2026). `ReadOnlyAccess` (v178) is a faithful subset: AWS's document lists 2,677
//! actions over two statements; only the actions of the services Nimbus serves or names are
//! kept (lambda, logs, sqs, sns, events, apigateway, iam, sts, kms, s3, cloudwatch, ec2,
//! kinesis, dynamodb), in AWS's order and statements.

use std::sync::OnceLock;

use crate::document::{Kind, Policy};

/// One AWS managed policy.
#[derive(Debug)]
pub struct ManagedPolicy {
    /// Its name, e.g. `AWSLambdaBasicExecutionRole`.
    pub name: &'static str,
    /// Its ARN, e.g. `arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`.
    pub arn: &'static str,
    /// Its path: `/` or `/service-role/`.
    pub path: &'static str,
    /// Its default version id, e.g. `v1`.
    pub default_version: &'static str,
    /// Its description, as IAM gives it.
    pub description: &'static str,
    /// The document of its default version.
    pub policy: Policy,
}

macro_rules! managed {
    ($(($name:literal, $path:literal, $version:literal, $description:literal)),* $(,)?) => {
        fn build() -> Vec<ManagedPolicy> {
            vec![$(ManagedPolicy {
                name: $name,
                arn: concat!("arn:aws:iam::aws:policy", $path, $name),
                path: $path,
                default_version: $version,
                description: $description,
                policy: Policy::parse(include_str!(concat!("../managed/", $name, ".json")), Kind::Identity)
                    .expect("AWS's managed policies are valid"),
            }),*]
        }
    };
}

managed![
    ("AWSLambdaBasicExecutionRole", "/service-role/", "v1", "Provides write permissions to CloudWatch Logs."),
    (
        "AWSLambdaSQSQueueExecutionRole",
        "/service-role/",
        "v1",
        "Provides receive message, delete message, and read attribute access to SQS queues, and write permissions to CloudWatch logs."
    ),
    (
        "AWSLambdaKinesisExecutionRole",
        "/service-role/",
        "v2",
        "Provides list and read access to Kinesis streams and write permissions to CloudWatch logs."
    ),
    (
        "AWSLambdaDynamoDBExecutionRole",
        "/service-role/",
        "v1",
        "Provides list and read access to DynamoDB streams and write permissions to CloudWatch logs."
    ),
    (
        "AWSLambdaVPCAccessExecutionRole",
        "/service-role/",
        "v3",
        "Provides minimum permissions for a Lambda function to execute while accessing a resource within a VPC - create, describe, delete network interfaces and write permissions to CloudWatch Logs."
    ),
    ("AWSLambdaRole", "/service-role/", "v1", "Default policy for AWS Lambda service role."),
    (
        "AWSLambda_ReadOnlyAccess",
        "/",
        "v3",
        "Grants read-only access to AWS Lambda service, AWS Lambda console features, and other related AWS services."
    ),
    ("AWSXrayWriteOnlyAccess", "/", "v2", "AWS X-Ray write only managed policy"),
    (
        "AWSXRayDaemonWriteAccess",
        "/",
        "v2",
        "Allow the AWS X-Ray Daemon to relay raw trace segments data to the service's API and retrieve sampling data (rules, targets, etc.) to be used by the X-Ray SDK."
    ),
    ("AdministratorAccess", "/", "v1", "Provides full access to AWS services and resources."),
    ("ReadOnlyAccess", "/", "v178", "Provides read-only access to AWS services and resources."),
];

/// Every managed policy Nimbus knows, parsed once.
pub fn all() -> &'static [ManagedPolicy] {
    static ALL: OnceLock<Vec<ManagedPolicy>> = OnceLock::new();
    ALL.get_or_init(build)
}

/// The managed policy with this ARN.
pub fn get(arn: &str) -> Option<&'static ManagedPolicy> {
    all().iter().find(|m| m.arn == arn)
}
