//! Evaluation cases: (policies, request, decision), from the IAM User Guide's evaluation-logic
//! pages and example policies.

use nimbus_policy::{evaluate, Context, Decision, Kind, Policies, Policy, PolicyType, Principal, Request};

const ACCOUNT: &str = "111122223333";

fn identity(doc: &str) -> Policy {
    Policy::parse(doc, Kind::Identity).expect("valid identity policy")
}

fn resource(doc: &str) -> Policy {
    Policy::parse(doc, Kind::Resource).expect("valid resource policy")
}

struct Case<'a> {
    name: &'a str,
    principal: Principal,
    action: &'a str,
    resource: &'a str,
    context: Context,
    identity: Vec<Policy>,
    resource_policy: Option<Policy>,
    boundary: Option<Policy>,
    session: Option<Policy>,
    /// A KMS key policy or a trust policy: it must allow or delegate.
    resource_required: bool,
    /// The resource is another account's.
    cross_account: bool,
    expected: Decision,
    /// The kind of policy that decided (deny or allow) or that lacked an allow.
    by: Option<PolicyType>,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Self {
            name: "",
            principal: Principal::user(ACCOUNT, "carlossalazar", "AIDACKCEVSQ6C2EXAMPLE"),
            action: "",
            resource: "*",
            context: Context::new(),
            identity: Vec::new(),
            resource_policy: None,
            boundary: None,
            session: None,
            resource_required: false,
            cross_account: false,
            expected: Decision::ImplicitDeny,
            by: None,
        }
    }
}

fn run(case: &Case<'_>) {
    let ids: Vec<&Policy> = case.identity.iter().collect();
    let policies = Policies {
        identity: &ids,
        resource: case.resource_policy.as_ref(),
        session: case.session.as_ref(),
        boundary: case.boundary.as_ref(),
        resource_required: case.resource_required,
        cross_account: case.cross_account,
    };
    let request = Request { principal: &case.principal, action: case.action, resource: case.resource, context: &case.context };
    let got = evaluate(&request, &policies);
    assert_eq!(got.decision, case.expected, "{}", case.name);
    let by = got.statement.map(|s| s.policy_type).or(got.missing);
    if case.by.is_some() {
        assert_eq!(by, case.by, "{}", case.name);
    }
}

/// "Example identity-based and resource-based policy evaluation" (Policy evaluation for
/// requests within a single account): Carlos's user policy and the bucket's policy.
const CARLOS_USER: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "AllowS3ListRead", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListAllMyBuckets"], "Resource": "*"},
  {"Sid": "AllowS3Self", "Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar/*", "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar"]},
  {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"}]}"#;
const CARLOS_BUCKET: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "AllowCarlosRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/carlossalazar"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/*"}]}"#;

/// KMS's default key policy ("Default key policy" in the KMS Developer Guide): the account may
/// use IAM policies to control access to the key.
const DEFAULT_KEY_POLICY: &str = r#"{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}"#;
/// A key policy that names one user and not the account.
const KEY_POLICY_FOR_ALICE: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:*", "Resource": "*"}]}"#;
const KMS_DECRYPT: &str = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}}"#;
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// "Example: Using NotAction and NotResource" style: deny everything outside us-east-1 functions.
const LAMBDA_DEV: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*", "lambda:InvokeFunction"], "Resource": "arn:aws:lambda:*:111122223333:function:*"},
  {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"},
  {"Effect": "Deny", "NotAction": ["lambda:*", "logs:*"], "Resource": "*"}]}"#;

/// IAM User Guide example "allows IAM users to manage their own credentials": the
/// `${aws:username}` resource.
const OWN_KEYS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["iam:*AccessKey*", "iam:GetUser"], "Resource": "arn:aws:iam::*:user/${aws:username}"}]}"#;

/// Example "Denies access to AWS based on the requested Region"-like boundary: lambda only.
const BOUNDARY_LAMBDA: &str =
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "logs:*"], "Resource": "*"}]}"#;

#[test]
fn documented_cases() {
    let f = "arn:aws:lambda:us-east-1:111122223333:function:my-function";
    let role = Principal::assumed_role(ACCOUNT, "dev", "alice", "AROADBQP57FF2AEXAMPLE");
    let cases = vec![
        Case {
            name: "carlos lists his bucket (identity allow)",
            action: "s3:ListBucket",
            resource: "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar",
            identity: vec![identity(CARLOS_USER)],
            expected: Decision::Allow,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "carlos reads another bucket's object (AllowS3ListRead)",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::other/x",
            identity: vec![identity(CARLOS_USER)],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "carlos writes another bucket: nothing allows",
            action: "s3:PutObject",
            resource: "arn:aws:s3:::other/x",
            identity: vec![identity(CARLOS_USER)],
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "the log bucket: DenyS3Logs overrides the bucket policy's allow",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/a",
            identity: vec![identity(CARLOS_USER)],
            resource_policy: Some(resource(CARLOS_BUCKET)),
            expected: Decision::ExplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "a resource policy naming the user allows alone",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/a",
            resource_policy: Some(resource(CARLOS_BUCKET)),
            expected: Decision::Allow,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "... even past a permissions boundary (IAM user, same account)",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::amzn-s3-demo-bucket-carlossalazar-logs/a",
            resource_policy: Some(resource(CARLOS_BUCKET)),
            boundary: Some(identity(BOUNDARY_LAMBDA)),
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "NotAction deny: sqs is outside the allowed services",
            action: "sqs:SendMessage",
            resource: "arn:aws:sqs:us-east-1:111122223333:q",
            identity: vec![
                identity(LAMBDA_DEV),
                identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sqs:*","Resource":"*"}}"#),
            ],
            expected: Decision::ExplicitDeny,
            ..Case::default()
        },
        Case {
            name: "wildcard action, case-insensitive",
            action: "Lambda:getFunction",
            resource: f,
            identity: vec![identity(LAMBDA_DEV)],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "a qualified ARN is not matched by function:*... it is (the * runs on)",
            action: "lambda:InvokeFunction",
            resource: "arn:aws:lambda:us-east-1:111122223333:function:my-function:prod",
            identity: vec![identity(LAMBDA_DEV)],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "another account's function",
            action: "lambda:InvokeFunction",
            resource: "arn:aws:lambda:us-east-1:444455556666:function:f",
            identity: vec![identity(LAMBDA_DEV)],
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "ListFunctions has no resource: needs *",
            action: "lambda:ListFunctions",
            identity: vec![identity(LAMBDA_DEV)],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "${aws:username}: own keys",
            action: "iam:CreateAccessKey",
            resource: "arn:aws:iam::111122223333:user/carlossalazar",
            identity: vec![identity(OWN_KEYS)],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "${aws:username}: someone else's keys",
            action: "iam:CreateAccessKey",
            resource: "arn:aws:iam::111122223333:user/mateo",
            identity: vec![identity(OWN_KEYS)],
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "${aws:username} is absent for a role session: no match",
            principal: role.clone(),
            action: "iam:CreateAccessKey",
            resource: "arn:aws:iam::111122223333:user/alice",
            identity: vec![identity(OWN_KEYS)],
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "a boundary limits identity permissions",
            action: "sqs:SendMessage",
            resource: "*",
            identity: vec![identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#)],
            boundary: Some(identity(BOUNDARY_LAMBDA)),
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Boundary),
            ..Case::default()
        },
        Case {
            name: "identity and boundary both allow",
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(LAMBDA_DEV)],
            boundary: Some(identity(BOUNDARY_LAMBDA)),
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "a session policy limits the role's permissions",
            principal: role.clone(),
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(LAMBDA_DEV)],
            session: Some(identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:Get*","Resource":"*"}}"#)),
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Session),
            ..Case::default()
        },
        Case {
            name: "resource policy naming the session ARN: not limited by the session policy",
            principal: role.clone(),
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/dev/alice"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#,
            )),
            session: Some(identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#)),
            expected: Decision::Allow,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "resource policy naming the role ARN: limited by the session policy",
            principal: role.clone(),
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/dev"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#,
            )),
            session: Some(identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#)),
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Session),
            ..Case::default()
        },
        Case {
            name: "resource policy naming the role ARN allows without identity policy",
            principal: role.clone(),
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/dev"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#,
            )),
            expected: Decision::Allow,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "resource policy naming the account delegates to identity policies",
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"lambda:*","Resource":"*"}}"#,
            )),
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "the root user is allowed by default",
            principal: Principal::root(ACCOUNT),
            action: "lambda:DeleteFunction",
            resource: f,
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... but not past a resource policy's deny",
            principal: Principal::root(ACCOUNT),
            action: "lambda:DeleteFunction",
            resource: f,
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"lambda:Delete*","Resource":"*"}}"#,
            )),
            expected: Decision::ExplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "S3 invokes a function: AddPermission's statement with SourceArn and SourceAccount",
            principal: Principal::service("s3.amazonaws.com"),
            action: "lambda:InvokeFunction",
            resource: f,
            context: Context::new().with("aws:SourceArn", "arn:aws:s3:::amzn-s3-demo-bucket").with("aws:SourceAccount", ACCOUNT),
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:my-function","Condition":{"StringEquals":{"AWS:SourceAccount":"111122223333"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::amzn-s3-demo-bucket"}}}]}"#,
            )),
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... another bucket",
            principal: Principal::service("s3.amazonaws.com"),
            action: "lambda:InvokeFunction",
            resource: f,
            context: Context::new().with("aws:SourceArn", "arn:aws:s3:::other").with("aws:SourceAccount", ACCOUNT),
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"*","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::amzn-s3-demo-bucket"}}}]}"#,
            )),
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "NotPrincipal deny spares only a principal listed with its account",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            identity: vec![identity(CARLOS_USER)],
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/carlossalazar","arn:aws:iam::111122223333:root"]},"Action":"s3:*","Resource":"*"}}"#,
            )),
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... listing the user without the account denies the user too",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            identity: vec![identity(CARLOS_USER)],
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/carlossalazar"]},"Action":"s3:*","Resource":"*"}}"#,
            )),
            expected: Decision::ExplicitDeny,
            ..Case::default()
        },
        Case {
            name: "NotResource: allow everything but one function",
            action: "lambda:DeleteFunction",
            resource: f,
            identity: vec![identity(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:*","NotResource":"arn:aws:lambda:*:*:function:my-function"}}"#,
            )],
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "MFA deny (BoolIfExists on aws:MultiFactorAuthPresent, absent for access keys)",
            action: "lambda:DeleteFunction",
            resource: f,
            identity: vec![
                identity(LAMBDA_DEV),
                identity(
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"lambda:Delete*","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}}"#,
                ),
                identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:*","Resource":"*"}}"#),
            ],
            expected: Decision::ExplicitDeny,
            ..Case::default()
        },
        Case {
            name: "SourceIp deny (example: Denies access to AWS based on the source IP): Bool on an absent key does not hold",
            action: "lambda:GetFunction",
            resource: f,
            context: Context::new().with("aws:SourceIp", "198.51.100.7"),
            identity: vec![
                identity(LAMBDA_DEV),
                identity(
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}}"#,
                ),
            ],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... with aws:ViaAWSService false the deny applies",
            action: "lambda:GetFunction",
            resource: f,
            context: Context::new().with("aws:SourceIp", "198.51.100.7").with("aws:ViaAWSService", "false"),
            identity: vec![
                identity(LAMBDA_DEV),
                identity(
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}}"#,
                ),
            ],
            expected: Decision::ExplicitDeny,
            ..Case::default()
        },
        Case {
            name: "... from an allowed network it does not",
            action: "lambda:GetFunction",
            resource: f,
            context: Context::new().with("aws:SourceIp", "203.0.113.9").with("aws:ViaAWSService", "false"),
            identity: vec![
                identity(LAMBDA_DEV),
                identity(
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}}"#,
                ),
            ],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "a date window (example: allows access within specific dates)",
            action: "lambda:GetFunction",
            resource: f,
            context: Context::new().with("aws:CurrentTime", "2020-04-01T12:00:00Z"),
            identity: vec![identity(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}}"#,
            )],
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... after it",
            action: "lambda:GetFunction",
            resource: f,
            context: Context::new().with("aws:CurrentTime", "2020-07-01T00:00:00Z"),
            identity: vec![identity(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}}"#,
            )],
            expected: Decision::ImplicitDeny,
            ..Case::default()
        },
        Case {
            name: "function URL with AuthType NONE needs lambda:FunctionUrlAuthType",
            principal: Principal::user(ACCOUNT, "anyone", "AIDAX"),
            action: "lambda:InvokeFunctionUrl",
            resource: f,
            context: Context::new().with("lambda:FunctionUrlAuthType", "NONE"),
            resource_policy: Some(resource(
                r#"{"Version":"2012-10-17","Statement":{"Sid":"FunctionURLAllowPublicAccess","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"arn:aws:lambda:us-east-1:111122223333:function:my-function","Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}}}"#,
            )),
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "KMS: the default key policy names the account: it delegates to IAM, whose policy allows",
            action: "kms:Decrypt",
            resource: KEY,
            identity: vec![identity(KMS_DECRYPT)],
            resource_policy: Some(resource(DEFAULT_KEY_POLICY)),
            resource_required: true,
            expected: Decision::Allow,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "... and without an identity policy nothing allows",
            action: "kms:Decrypt",
            resource: KEY,
            resource_policy: Some(resource(DEFAULT_KEY_POLICY)),
            resource_required: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "KMS: a key policy without the account does not delegate: IAM's allow is not enough",
            action: "kms:Decrypt",
            resource: KEY,
            identity: vec![identity(KMS_DECRYPT)],
            resource_policy: Some(resource(KEY_POLICY_FOR_ALICE)),
            resource_required: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "KMS: the account's root may use a key whose policy names the account",
            principal: Principal::root(ACCOUNT),
            action: "kms:Decrypt",
            resource: KEY,
            resource_policy: Some(resource(DEFAULT_KEY_POLICY)),
            resource_required: true,
            expected: Decision::Allow,
            ..Case::default()
        },
        Case {
            name: "... but not one whose policy leaves the account out (root is bound by key policies too)",
            principal: Principal::root(ACCOUNT),
            action: "kms:Decrypt",
            resource: KEY,
            resource_policy: Some(resource(KEY_POLICY_FOR_ALICE)),
            resource_required: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "... a required policy that is absent allows nothing either",
            action: "kms:Decrypt",
            resource: KEY,
            identity: vec![identity(KMS_DECRYPT)],
            resource_required: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "... while a key policy naming the user allows it without an identity policy",
            principal: Principal::user(ACCOUNT, "alice", "AIDAALICE"),
            action: "kms:Decrypt",
            resource: KEY,
            resource_policy: Some(resource(KEY_POLICY_FOR_ALICE)),
            resource_required: true,
            expected: Decision::Allow,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "... and an identity policy's deny still wins over it",
            principal: Principal::user(ACCOUNT, "alice", "AIDAALICE"),
            action: "kms:Decrypt",
            resource: KEY,
            identity: vec![identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"kms:*","Resource":"*"}}"#)],
            resource_policy: Some(resource(KEY_POLICY_FOR_ALICE)),
            resource_required: true,
            expected: Decision::ExplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "trust policy naming another principal: the caller's sts:AssumeRole allow is not enough",
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::111122223333:role/r",
            identity: vec![identity(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}"#)],
            resource_policy: Some(
                Policy::parse(
                    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
                    Kind::Trust,
                )
                .expect("trust policy"),
            ),
            resource_required: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
    ];
    for case in &cases {
        run(case);
    }
}

/// "Cross-account policy evaluation logic" (IAM User Guide): a principal of account
/// 444455556666 on a resource of 111122223333 needs an allow from the resource's policy
/// (naming it or its account) and from its own account's identity policies.
#[test]
fn cross_account_cases() {
    const OTHER: &str = "444455556666";
    let f = "arn:aws:lambda:us-east-1:111122223333:function:shared";
    let invoke_any = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}}"#;
    let names_account = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:shared"}}"#;
    let names_user = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/ops"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#;
    let denies_account = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"lambda:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"444455556666"},"Action":"lambda:InvokeFunction","Resource":"*"}]}"#;
    let ops = || Principal::user(OTHER, "ops", "AIDAOPS");
    let cases = vec![
        Case {
            name: "both allow: the resource policy names the account, the user's policy allows",
            principal: ops(),
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(invoke_any)],
            resource_policy: Some(resource(names_account)),
            cross_account: true,
            expected: Decision::Allow,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "the resource policy names the user directly: the user's own account must still allow",
            principal: ops(),
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(names_user)),
            cross_account: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Identity),
            ..Case::default()
        },
        Case {
            name: "an identity policy alone never reaches into another account",
            principal: ops(),
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(invoke_any)],
            cross_account: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "the other account's root needs the resource policy too",
            principal: Principal::root(OTHER),
            action: "lambda:InvokeFunction",
            resource: f,
            cross_account: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "... and with it, root's own account allows implicitly",
            principal: Principal::root(OTHER),
            action: "lambda:InvokeFunction",
            resource: f,
            resource_policy: Some(resource(names_account)),
            cross_account: true,
            expected: Decision::Allow,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "an explicit deny in the resource policy wins",
            principal: ops(),
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(invoke_any)],
            resource_policy: Some(resource(denies_account)),
            cross_account: true,
            expected: Decision::ExplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
        Case {
            name: "a user of a third account is not the account the policy names",
            principal: Principal::user("777788889999", "ops", "AIDAOPS3"),
            action: "lambda:InvokeFunction",
            resource: f,
            identity: vec![identity(invoke_any)],
            resource_policy: Some(resource(names_account)),
            cross_account: true,
            expected: Decision::ImplicitDeny,
            by: Some(PolicyType::Resource),
            ..Case::default()
        },
    ];
    for case in &cases {
        run(case);
    }
}

#[test]
fn access_denied_messages() {
    let bob = Principal::user(ACCOUNT, "bob", "AIDAX");
    let context = Context::new();
    let f = "arn:aws:lambda:us-east-1:111122223333:function:f";
    let request = Request { principal: &bob, action: "lambda:GetFunction", resource: f, context: &context };
    let none = evaluate(&request, &Policies::default());
    assert_eq!(
        none.message(&request).to_string(),
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: lambda:GetFunction on resource: arn:aws:lambda:us-east-1:111122223333:function:f because no identity-based policy allows the lambda:GetFunction action"
    );
    let deny = identity(r#"{"Version":"2012-10-17","Statement":{"Sid":"NoGets","Effect":"Deny","Action":"lambda:Get*","Resource":"*"}}"#);
    let ids = [&deny];
    let denied = evaluate(&request, &Policies { identity: &ids, ..Policies::default() });
    assert_eq!(denied.statement.and_then(|s| s.sid()), Some("NoGets"));
    assert_eq!(
        denied.message(&request).to_string(),
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: lambda:GetFunction on resource: arn:aws:lambda:us-east-1:111122223333:function:f with an explicit deny in an identity-based policy"
    );
    // A key policy that does not let the user in (KMS's recorded wording, no final period).
    let key_policy = resource(KEY_POLICY_FOR_ALICE);
    let decrypt = Request { principal: &bob, action: "kms:Decrypt", resource: KEY, context: &context };
    let denied = evaluate(&decrypt, &Policies { resource: Some(&key_policy), resource_required: true, ..Policies::default() });
    assert_eq!(
        denied.message(&decrypt).to_string(),
        format!("User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:Decrypt on resource: {KEY} because no resource-based policy allows the kms:Decrypt action")
    );
}

#[test]
fn managed_policies() {
    let all = nimbus_policy::managed::all();
    assert_eq!(all.len(), 11);
    let basic = nimbus_policy::managed::get("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole").expect("known");
    assert_eq!(basic.default_version, "v1");
    let role = Principal::assumed_role(ACCOUNT, "fn-role", "fn", "AROAX");
    let context = Context::new();
    let put = Request {
        principal: &role,
        action: "logs:PutLogEvents",
        resource: "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:s",
        context: &context,
    };
    let ids = [&basic.policy];
    assert!(evaluate(&put, &Policies { identity: &ids, ..Policies::default() }).allowed());
    let read_only = nimbus_policy::managed::get("arn:aws:iam::aws:policy/ReadOnlyAccess").expect("known");
    let ids = [&read_only.policy];
    let get = Request { action: "lambda:GetFunctionConfiguration", resource: "*", ..put };
    assert!(evaluate(&get, &Policies { identity: &ids, ..Policies::default() }).allowed());
    let delete = Request { action: "lambda:DeleteFunction", ..get };
    assert!(!evaluate(&delete, &Policies { identity: &ids, ..Policies::default() }).allowed());
    assert!(nimbus_policy::managed::get("arn:aws:iam::aws:policy/AWSLambdaBasicExecutionRole").is_none(), "the path is part of the ARN");

    // AWS's samples give their functions AWSLambda_ReadOnlyAccess: lambda:Get*/List* on
    // everything, but logs reads only in Lambda's own groups.
    let lambda_ro = nimbus_policy::managed::get("arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess").expect("known");
    let ids = [&lambda_ro.policy];
    let cases = [
        ("lambda:GetAccountSettings", "*", true),
        ("lambda:ListFunctions", "*", true),
        ("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:f", false),
        ("logs:GetLogEvents", "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:s", true),
        ("logs:GetLogEvents", "arn:aws:logs:us-east-1:111122223333:log-group:/app/f:log-stream:s", false),
    ];
    for (action, resource, allowed) in cases {
        let r = Request { action, resource, ..put };
        assert_eq!(evaluate(&r, &Policies { identity: &ids, ..Policies::default() }).allowed(), allowed, "{action} on {resource}");
    }
    let xray = nimbus_policy::managed::get("arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess").expect("known");
    assert_eq!(xray.default_version, "v2");
}
