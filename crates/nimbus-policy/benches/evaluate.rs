//! Measures one realistic evaluation: a role session with three identity policies of ten
//! statements each (wildcard actions and ARNs, two conditions) plus a function's resource
//! policy, asking to invoke a function. Run with `cargo bench -p nimbus-policy`.

use std::hint::black_box;
use std::time::Instant;

use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, Principal, Request};

/// Ten statements over `service`, the last two with conditions; none of them matches
/// `lambda:InvokeFunction` except in the last policy, so evaluation reads everything.
fn identity_policy(service: &str, allow_invoke: bool) -> Policy {
    let mut statements = Vec::new();
    for i in 0..8 {
        statements.push(format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":["{service}:Get*","{service}:List*","{service}:Describe{i}*"],"Resource":["arn:aws:{service}:*:111122223333:thing/{i}/*","arn:aws:{service}:us-east-1:*:other-{i}-*"]}}"#
        ));
    }
    statements.push(format!(
        r#"{{"Sid":"Tagged","Effect":"Allow","Action":"{service}:Tag*","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"${{aws:PrincipalTag/owner}}"}},"IpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}}}}"#
    ));
    let last = if allow_invoke {
        r#"{"Sid":"Invoke","Effect":"Allow","Action":["lambda:InvokeFunction","lambda:InvokeAsync"],"Resource":"arn:aws:lambda:us-east-1:111122223333:function:orders-*","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringLike":{"aws:userid":"AROA*:*"}}}"#.to_string()
    } else {
        format!(
            r#"{{"Sid":"DenyDelete","Effect":"Deny","Action":"{service}:Delete*","Resource":"*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}},"DateGreaterThan":{{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}}}"#
        )
    };
    statements.push(last);
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","));
    Policy::parse(&doc, Kind::Identity).expect("valid")
}

fn main() {
    let identity = [identity_policy("sqs", false), identity_policy("dynamodb", false), identity_policy("lambda", true)];
    let ids: Vec<&Policy> = identity.iter().collect();
    let resource = Policy::parse(
        r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:orders-api","Condition":{"StringEquals":{"AWS:SourceAccount":"111122223333"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::orders-*"}}}]}"#,
        Kind::Resource,
    )
    .expect("valid");
    let policies = Policies { identity: &ids, resource: Some(&resource), ..Policies::default() };
    let principal = Principal::assumed_role("111122223333", "orders-api-caller", "session-1", "AROAEXAMPLEID");
    let context = Context::new()
        .with("aws:SourceIp", "10.1.2.3")
        .with("aws:SecureTransport", "true")
        .with("aws:CurrentTime", "2026-03-07T12:00:00Z")
        .with("aws:PrincipalTag/team", "orders");
    let request = Request {
        principal: &principal,
        action: "lambda:InvokeFunction",
        resource: "arn:aws:lambda:us-east-1:111122223333:function:orders-api",
        context: &context,
    };
    assert!(evaluate(&request, &policies).allowed());
    let denied = Request { action: "lambda:DeleteFunction", ..request };
    assert!(!evaluate(&denied, &policies).allowed());

    for (name, req) in [("allow (reads all 31 statements)", request), ("implicit deny", denied)] {
        let rounds = 200_000;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(evaluate(black_box(&req), black_box(&policies)));
            }
            best = best.min(start.elapsed().as_nanos() as f64 / f64::from(rounds));
        }
        println!("{name}: {best:.0} ns per evaluation (best of 5 x {rounds})");
    }
    let start = Instant::now();
    let parses = 2_000;
    for _ in 0..parses {
        black_box(identity_policy("sqs", false));
    }
    println!("parse one 10-statement policy: {:.1} µs", start.elapsed().as_nanos() as f64 / f64::from(parses) / 1000.0);
}
