//! Condition-operator cases: (operator block, context, holds?), from the IAM User Guide's
//! "Condition operators", "Set operators for multivalued context keys" and "Policy variables".

use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, Principal, Request};

/// Whether an Allow statement with `condition` (a JSON `Condition` object) applies.
fn holds(condition: &str, context: &Context) -> bool {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}}}"#);
    let policy = Policy::parse(&doc, Kind::Identity).unwrap_or_else(|e| panic!("{condition}: {e}"));
    let bob = Principal::user("111122223333", "bob", "AIDAEXAMPLEBOB");
    let request = Request { principal: &bob, action: "s3:GetObject", resource: "arn:aws:s3:::b/k", context };
    let ids = [&policy];
    evaluate(&request, &Policies { identity: &ids, ..Policies::default() }).allowed()
}

#[test]
fn operators() {
    let one = |k: &str, v: &str| Context::new().with(k, v);
    let tags = |v: &[&str]| Context::new().with_values("aws:TagKeys", v);
    let none = Context::new();
    #[rustfmt::skip]
    let cases: Vec<(&str, Context, bool)> = vec![
        // String operators; values of one key are ORed; key names are case-insensitive.
        (r#"{"StringEquals":{"aws:PrincipalTag/team":["a","b"]}}"#, one("aws:principaltag/TEAM", "b"), true),
        (r#"{"StringEquals":{"aws:PrincipalTag/team":"a"}}"#, one("aws:PrincipalTag/team", "A"), false),
        (r#"{"StringEquals":{"aws:PrincipalTag/team":"a*"}}"#, one("aws:PrincipalTag/team", "ab"), false),
        (r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"a"}}"#, one("aws:PrincipalTag/team", "A"), true),
        (r#"{"StringNotEquals":{"aws:PrincipalTag/team":["a","b"]}}"#, one("aws:PrincipalTag/team", "c"), true),
        (r#"{"StringNotEquals":{"aws:PrincipalTag/team":["a","b"]}}"#, one("aws:PrincipalTag/team", "a"), false),
        (r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/team":"a"}}"#, one("aws:PrincipalTag/team", "A"), false),
        (r#"{"StringLike":{"s3:prefix":["home/*","pub?ic/*"]}}"#, one("s3:prefix", "public/x"), true),
        (r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#, one("s3:prefix", "home/x"), false),
        // Absent keys: false, except negated operators and ...IfExists.
        (r#"{"StringEquals":{"aws:PrincipalTag/team":"a"}}"#, none.clone(), false),
        (r#"{"StringNotEquals":{"aws:PrincipalTag/team":"a"}}"#, none.clone(), true),
        (r#"{"StringEqualsIfExists":{"aws:PrincipalTag/team":"a"}}"#, none.clone(), true),
        (r#"{"StringEqualsIfExists":{"aws:PrincipalTag/team":"a"}}"#, one("aws:PrincipalTag/team", "b"), false),
        // Several keys and several operators are ANDed.
        (r#"{"StringEquals":{"aws:SourceAccount":"1","aws:SourceArn":"x"}}"#, one("aws:SourceAccount", "1"), false),
        (r#"{"StringEquals":{"aws:SourceAccount":"1"},"StringLike":{"aws:SourceArn":"x*"}}"#, one("aws:SourceAccount", "1").with("aws:SourceArn", "xy"), true),
        // Numeric.
        (r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#, one("s3:max-keys", "10"), true),
        (r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#, one("s3:max-keys", "10"), false),
        (r#"{"NumericGreaterThan":{"s3:max-keys":"1.5"}}"#, one("s3:max-keys", "2"), true),
        (r#"{"NumericGreaterThanEquals":{"s3:max-keys":"2"}}"#, one("s3:max-keys", "2.0"), true),
        (r#"{"NumericEquals":{"s3:max-keys":"10"}}"#, one("s3:max-keys", "ten"), false),
        (r#"{"NumericNotEquals":{"s3:max-keys":["10","20"]}}"#, one("s3:max-keys", "30"), true),
        // Dates: ISO 8601 and epoch seconds on either side.
        (r#"{"DateGreaterThan":{"aws:CurrentTime":"2019-07-16T12:00:00Z"}}"#, one("aws:CurrentTime", "2019-07-16T12:00:01Z"), true),
        (r#"{"DateLessThan":{"aws:CurrentTime":"2019-07-16"}}"#, one("aws:CurrentTime", "2019-07-15T23:59:59Z"), true),
        (r#"{"DateEquals":{"aws:EpochTime":"1563278400"}}"#, one("aws:EpochTime", "1563278400"), true),
        (r#"{"DateEquals":{"aws:CurrentTime":"1563278400"}}"#, one("aws:CurrentTime", "2019-07-16T12:00:00Z"), true),
        (r#"{"DateLessThanEquals":{"aws:CurrentTime":"2019-07-16T14:00:00+02:00"}}"#, one("aws:CurrentTime", "2019-07-16T12:00:00Z"), true),
        (r#"{"DateNotEquals":{"aws:CurrentTime":"2019-07-16T12:00:00Z"}}"#, one("aws:CurrentTime", "2019-07-16T12:00:00.000Z"), false),
        // Bool (strings or JSON booleans), BinaryEquals.
        (r#"{"Bool":{"aws:SecureTransport":"false"}}"#, one("aws:SecureTransport", "false"), true),
        (r#"{"Bool":{"aws:SecureTransport":true}}"#, one("aws:SecureTransport", "TRUE"), true),
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, none.clone(), false),
        (r#"{"BinaryEquals":{"key":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#, one("key", "QmluYXJ5VmFsdWVJbkJhc2U2NA=="), true),
        // IP addresses, v4 and v6.
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, one("aws:SourceIp", "203.0.113.77"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, one("aws:SourceIp", "203.0.114.1"), false),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}"#, one("aws:SourceIp", "2001:db8:1234:5678::1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"2001:DB8:1234:5678::/64"}}"#, one("aws:SourceIp", "203.0.113.1"), false),
        (r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#, one("aws:SourceIp", "198.51.100.1"), true),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.5"}}"#, one("aws:SourceIp", "203.0.113.5"), true),
        // ARN operators: segment by segment, wildcards in every one of them.
        (r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#, one("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:topic"), true),
        (r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#, one("aws:SourceArn", "arn:aws:sns:us-east-1:444455556666:topic"), false),
        (r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sqs:*:*:dlq-*"}}"#, one("aws:SourceArn", "arn:aws:sqs:us-east-1:1:dlq-a"), false),
        (r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sqs:*:*:dlq-*"}}"#, none.clone(), true),
        // Null.
        (r#"{"Null":{"aws:TokenIssueTime":"true"}}"#, none.clone(), true),
        (r#"{"Null":{"aws:TokenIssueTime":"false"}}"#, one("aws:TokenIssueTime", "2020-01-01T00:00:00Z"), true),
        (r#"{"Null":{"aws:TokenIssueTime":"false"}}"#, none.clone(), false),
        // Set operators ("Set operators for multivalued context keys").
        (r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#, tags(&["environment"]), true),
        (r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#, tags(&["environment", "owner"]), false),
        (r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#, none.clone(), true),
        (r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#, tags(&[]), true),
        (r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#, tags(&["owner", "cost-center"]), true),
        (r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment"]}}"#, none.clone(), false),
        (r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["environment"]}}"#, none.clone(), true),
        (r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["environment"]}}"#, tags(&["environment", "owner"]), true),
        (r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["environment"]}}"#, tags(&["environment", "owner"]), false),
        (r#"{"ForAllValues:StringLike":{"aws:TagKeys":["env*","cost*"]}}"#, tags(&["environment", "costcenter"]), true),
        // Without a set operator a multivalued key matches if any value does.
        (r#"{"StringEquals":{"aws:TagKeys":"owner"}}"#, tags(&["environment", "owner"]), true),
        // Policy variables in condition values; principal keys come from the principal.
        (r#"{"StringEquals":{"aws:PrincipalTag/owner":"${aws:username}"}}"#, one("aws:PrincipalTag/owner", "bob"), true),
        (r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}"#, one("s3:prefix", "home/bob/docs"), true),
        (r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}"#, one("s3:prefix", "home/alice/docs"), false),
        (r#"{"StringEquals":{"s3:prefix":"${aws:PrincipalTag/none}"}}"#, one("s3:prefix", ""), false),
        (r#"{"StringEquals":{"s3:prefix":"${aws:PrincipalTag/none, 'shared'}"}}"#, one("s3:prefix", "shared"), true),
        (r#"{"StringEquals":{"s3:prefix":"a${*}b${?}c${$}"}}"#, one("s3:prefix", "a*b?c$"), true),
        (r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333","aws:userid":"AIDAEXAMPLEBOB","aws:PrincipalType":"User"}}"#, none.clone(), true),
        (r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:user/*"}}"#, none.clone(), true),
    ];
    for (condition, context, expected) in &cases {
        assert_eq!(holds(condition, context), *expected, "{condition} with {context:?}");
    }
}

/// Before version 2012-10-17 `${…}` is literal text ("Policy variables": "the variables are
/// treated as literal strings").
#[test]
fn variables_need_version_2012() {
    let doc = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}"}}"#;
    let policy = Policy::parse(doc, Kind::Resource).expect("valid");
    let bob = Principal::user("111122223333", "bob", "AIDAX");
    let context = Context::new();
    let literal = Request { principal: &bob, action: "s3:GetObject", resource: "arn:aws:s3:::b/${aws:username}", context: &context };
    let named = Request { resource: "arn:aws:s3:::b/bob", ..literal };
    let policies = Policies { resource: Some(&policy), ..Policies::default() };
    assert!(evaluate(&literal, &policies).allowed());
    assert!(!evaluate(&named, &policies).allowed());
}
