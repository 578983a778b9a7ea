//! The rule language against AWS's documented examples (EventBridge's, from Event Ruler's
//! README and the user guide), and one table of every operator in every dialect: what
//! matches, and what each dialect refuses and how it words the refusal.

use serde_json::{json, Value};

use crate::{Dialect, Pattern, Scalar, Scope};

const EB: Dialect = Dialect::EventPattern;
const FC: Dialect = Dialect::FilterCriteria;
const ATTR: Dialect = Dialect::FilterPolicy(Scope::MessageAttributes);
const BODY: Dialect = Dialect::FilterPolicy(Scope::MessageBody);

/// AWS's sample event (Event Ruler's README and the EventBridge user guide).
fn ec2_event() -> Value {
    json!({
        "version": "0",
        "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "012345679012",
        "time": "2017-10-02T16:24:49Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
        "detail": {
            "c-count": 5,
            "d-count": 3,
            "x-limit": 301.8,
            "source-ip": "10.0.0.33",
            "instance-id": "i-000000aaaaaa00000",
            "state": "running"
        }
    })
}

fn check(pattern: Value, event: &Value, expected: bool) {
    let p = Pattern::parse(EB, &pattern.to_string()).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    assert_eq!(p.matches(event), expected, "pattern {pattern} on {event}");
}

#[test]
fn aws_examples() {
    let e = ec2_event();
    for (pattern, expected) in [
        (
            json!({"detail-type": ["EC2 Instance State-change Notification"],
                "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
                "detail": {"state": ["initializing", "running"]}}),
            true,
        ),
        (json!({"source": ["aws.ec2"], "detail": {"state": ["stopped"]}}), false),
        (json!({"source": ["aws.s3"]}), false),
        (json!({"time": [{"prefix": "2017-10-02"}]}), true),
        (json!({"time": [{"prefix": "2017-10-03"}]}), false),
        (json!({"source": [{"prefix": {"equals-ignore-case": "AWS.E"}}]}), true),
        (json!({"source": [{"suffix": "ec2"}]}), true),
        (json!({"source": [{"suffix": {"equals-ignore-case": "EC2"}}]}), true),
        (json!({"source": [{"suffix": "s3"}]}), false),
        (json!({"source": [{"equals-ignore-case": "AWS.EC2"}]}), true),
        (json!({"source": [{"wildcard": "aws.*2"}]}), true),
        (json!({"source": [{"wildcard": "aws.*3"}]}), false),
        (json!({"detail": {"state": [{"anything-but": "initializing"}]}}), true),
        (json!({"detail": {"state": [{"anything-but": "running"}]}}), false),
        (json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}), true),
        (json!({"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}), false),
        (json!({"detail": {"x-limit": [{"anything-but": 123}]}}), true),
        (json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}), true),
        (json!({"detail": {"x-limit": [{"anything-but": [301.8]}]}}), false),
        (json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}), true),
        (json!({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}), false),
        (json!({"detail": {"state": [{"anything-but": {"suffix": "ing"}}]}}), false),
        (json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["RUNNING", "x"]}}]}}), false),
        (json!({"detail": {"state": [{"anything-but": {"wildcard": "r*g"}}]}}), false),
        (json!({"detail": {"state": [{"anything-but": {"wildcard": "s*p"}}]}}), true),
        (
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"numeric": ["=", 3.018e2]}]}}),
            true,
        ),
        (json!({"detail": {"c-count": [{"numeric": [">", 5]}]}}), false),
        (json!({"detail": {"c-count": [{"numeric": [">=", 5]}]}}), true),
        (json!({"detail": {"state": [{"numeric": [">", 0]}]}}), false),
        (json!({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}), true),
        (json!({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}), false),
        (json!({"detail": {"c-count": [{"exists": true}]}}), true),
        (json!({"detail": {"c-count": [{"exists": false}]}}), false),
        (json!({"detail": {"missing": [{"exists": false}]}}), true),
        (json!({"detail": {"missing": [{"exists": true}]}}), false),
        (json!({"nothing": {"deeper": [{"exists": false}]}}), true),
        (json!({"detail": {"c-count": [5]}}), true),
        (json!({"detail": {"c-count": [5.0]}}), true),
        (json!({"detail": {"c-count": ["5"]}}), false),
        (
            json!({"time": [{"prefix": "2017-10-02"}],
                "detail": {"state": [{"anything-but": "initializing"}],
                           "c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"anything-but": [100, 200, 300]}],
                           "source-ip": [{"cidr": "10.0.0.0/8"}]}}),
            true,
        ),
    ] {
        check(pattern, &e, expected);
    }
}

#[test]
fn or() {
    let e = json!({"source": "aws.cloudwatch", "metricName": "CPUUtilization", "namespace": "AWS/Lambda",
                   "detail": {"source": "x", "detail-type": "CloudWatch Alarm State Change"}});
    check(
        json!({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2"]}]}),
        &e,
        true,
    );
    check(json!({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["ReadLatency"]}, {"namespace": ["AWS/EC2"]}]}), &e, false);
    // Parallel ORs, one nested in detail.
    check(
        json!({"$or": [{"metricName": ["X"]}, {"namespace": ["AWS/Lambda"]}],
                 "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]}}),
        &e,
        true,
    );
    // An AND inside an OR, and an OR inside that.
    check(
        json!({"source": ["aws.cloudwatch"], "$or": [
            {"metricName": ["ReadLatency"]},
            {"namespace": ["AWS/Lambda"], "$or": [{"metricId": [1234]}, {"metricName": ["CPUUtilization"]}]}
        ]}),
        &e,
        true,
    );
    // "$or" with fewer than two objects is an ordinary field name.
    check(json!({"$or": {"metricName": ["CPUUtilization"]}}), &e, false);
    check(json!({"$or": {"metricName": ["CPUUtilization"]}}), &json!({"$or": {"metricName": "CPUUtilization"}}), true);
}

#[test]
fn arrays_and_values() {
    let e = json!({"employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        [{"firstName": "Peter", "lastName": "Jones"}]
    ], "tags": ["a", ["b", "c"]], "nothing": null, "empty": "", "flag": false, "none": []});
    check(json!({"employees": {"firstName": ["Anna"]}}), &e, true);
    check(json!({"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}}), &e, true);
    // Fields of one pattern object must match within one array element.
    check(json!({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}), &e, false);
    check(json!({"tags": ["c"]}), &e, true);
    check(json!({"tags": ["d", "a"]}), &e, true);
    check(json!({"tags": ["d"]}), &e, false);
    check(json!({"tags": [{"anything-but": "a"}]}), &e, true);
    check(json!({"nothing": [null]}), &e, true);
    check(json!({"missing": [null]}), &e, false);
    check(json!({"empty": [""]}), &e, true);
    check(json!({"empty": [null]}), &e, false);
    check(json!({"flag": [false]}), &e, true);
    check(json!({"flag": ["false"]}), &e, false);
    check(json!({"none": [{"exists": false}]}), &e, true);
    // An object is not a leaf: exists does not see it.
    check(json!({"employees": [{"exists": true}]}), &e, false);
    check(json!({"employees": [{"exists": false}]}), &e, true);
}

#[test]
fn invalid_patterns() {
    for p in [
        "",
        "not json",
        "[]",
        "\"x\"",
        "{}",
        r#"{"source": "aws.ec2"}"#,
        r#"{"source": 5}"#,
        r#"{"source": []}"#,
        r#"{"source": [[1]]}"#,
        r#"{"source": [{"prefix": 5}]}"#,
        r#"{"source": [{"foo": "x"}]}"#,
        r#"{"source": [{"prefix": "a", "suffix": "b"}]}"#,
        r#"{"source": [{}]}"#,
        r#"{"n": [{"numeric": [">", "x"]}]}"#,
        r#"{"n": [{"numeric": ["!=", 1]}]}"#,
        r#"{"n": [{"numeric": ["<", 1, ">", 0]}]}"#,
        r#"{"n": [{"numeric": [">", 5, "<", 1]}]}"#,
        r#"{"n": [{"numeric": [">", 1, "<"]}]}"#,
        r#"{"n": [{"numeric": []}]}"#,
        r#"{"n": [{"exists": "yes"}]}"#,
        r#"{"s": [{"wildcard": "a**b"}]}"#,
        r#"{"s": [{"wildcard": "a\\b"}]}"#,
        r#"{"s": [{"anything-but": ["a", 1]}]}"#,
        r#"{"s": [{"anything-but": []}]}"#,
        r#"{"s": [{"anything-but": true}]}"#,
        r#"{"s": [{"anything-but": {"numeric": [">", 1]}}]}"#,
        r#"{"s": [{"cidr": "10.0.0.0/33"}]}"#,
        r#"{"s": [{"cidr": "banana"}]}"#,
        r#"{"s": [{"prefix": {"suffix": "x"}}]}"#,
        r#"{"$or": [{"a": ["x"]}, {}]}"#,
        r#"{"detail": {"s": "x"}}"#,
    ] {
        let m = Pattern::parse(EB, p).expect_err(p).to_string();
        assert!(m.starts_with("Event pattern is not valid. Reason: "), "{p}: {m}");
        let m = Pattern::parse(FC, p).expect_err(p).to_string();
        assert!(m.starts_with("Invalid filter pattern definition. Event pattern is not valid. Reason: "), "{p}: {m}");
    }
}

/// What a row expects.
enum Expect {
    Match(bool),
    /// Refused with this reason: EventBridge and Lambda wrap it in their sentences, SNS
    /// says it as it is.
    Invalid(&'static str),
}
use Expect::{Invalid, Match};

/// The event every row matches unless it names another. For the attribute scope it stands
/// for message attributes: a scalar is an attribute's value, an array a `String.Array`'s
/// values, an object a binary attribute (present, no value to match).
const EVENT: &str = r#"{
    "source": "aws.ec2", "state": "running", "count": 5, "ratio": 0.5, "flag": true, "nothing": null,
    "ip": "10.0.0.33", "v6": "2001:db8::1", "tags": ["red", "green"],
    "detail": {"kind": "Order", "total": 150, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 5}]}
}"#;

const ALL: &[Dialect] = &[EB, FC, ATTR, BODY];
const EVENTBRIDGE: &[Dialect] = &[EB, FC];
const SNS: &[Dialect] = &[ATTR, BODY];
const NESTED: &[Dialect] = &[EB, FC, BODY];

/// (dialects, pattern, event (`None`: [`EVENT`]), expected).
type Row = (&'static [Dialect], &'static str, Option<&'static str>, Expect);

fn table() -> Vec<Row> {
    vec![
        // exact values
        (ALL, r#"{"source":["aws.ec2"]}"#, None, Match(true)),
        (ALL, r#"{"source":["aws.s3","aws.ec2"]}"#, None, Match(true)),
        (ALL, r#"{"source":["AWS.EC2"]}"#, None, Match(false)),
        (ALL, r#"{"count":[5]}"#, None, Match(true)),
        (ALL, r#"{"count":[5.0]}"#, None, Match(true)),
        (ALL, r#"{"count":["5"]}"#, None, Match(false)),
        (ALL, r#"{"ratio":[0.5]}"#, None, Match(true)),
        (ALL, r#"{"flag":[true]}"#, None, Match(true)),
        (ALL, r#"{"flag":["true"]}"#, None, Match(false)),
        (ALL, r#"{"nothing":[null]}"#, None, Match(true)),
        (ALL, r#"{"missing":[null]}"#, None, Match(false)),
        (ALL, r#"{"tags":["green"]}"#, None, Match(true)),
        (ALL, r#"{"tags":["blue"]}"#, None, Match(false)),
        (ALL, r#"{"source":["aws.ec2"],"state":["stopped"]}"#, None, Match(false)),
        (
            EVENTBRIDGE,
            r#"{"source":[["aws.ec2"]]}"#,
            None,
            Invalid(r#"Match value must be String, number, true, false, or null ("source")"#),
        ),
        (SNS, r#"{"source":[["aws.ec2"]]}"#, None, Invalid("FilterPolicy: Match value must be String, number, true, false, or null")),
        (EVENTBRIDGE, r#"{"source":"aws.ec2"}"#, None, Invalid(r#""source" must be an object or an array"#)),
        (SNS, r#"{"source":"aws.ec2"}"#, None, Invalid(r#"FilterPolicy: "source" must be an object or an array"#)),
        (EVENTBRIDGE, r#"{"source":[]}"#, None, Invalid(r#"Empty arrays are not allowed ("source")"#)),
        (SNS, r#"{"source":[]}"#, None, Invalid("FilterPolicy: Empty arrays are not allowed")),
        // prefix
        (ALL, r#"{"source":[{"prefix":"aws."}]}"#, None, Match(true)),
        (ALL, r#"{"source":[{"prefix":"gcp."}]}"#, None, Match(false)),
        (ALL, r#"{"count":[{"prefix":"5"}]}"#, None, Match(false)),
        (ALL, r#"{"tags":[{"prefix":"gr"}]}"#, None, Match(true)),
        (EVENTBRIDGE, r#"{"source":[{"prefix":{"equals-ignore-case":"AWS."}}]}"#, None, Match(true)),
        (
            SNS,
            r#"{"source":[{"prefix":{"equals-ignore-case":"AWS."}}]}"#,
            None,
            Invalid("FilterPolicy: prefix match pattern must be a string"),
        ),
        (
            EVENTBRIDGE,
            r#"{"source":[{"prefix":{"suffix":"x"}}]}"#,
            None,
            Invalid("Unsupported prefix pattern: only a string or equals-ignore-case is allowed"),
        ),
        (EVENTBRIDGE, r#"{"source":[{"prefix":5}]}"#, None, Invalid("prefix match pattern must be a string")),
        (SNS, r#"{"source":[{"prefix":5}]}"#, None, Invalid("FilterPolicy: prefix match pattern must be a string")),
        // suffix
        (ALL, r#"{"source":[{"suffix":"ec2"}]}"#, None, Match(true)),
        (ALL, r#"{"source":[{"suffix":"s3"}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"source":[{"suffix":{"equals-ignore-case":"EC2"}}]}"#, None, Match(true)),
        (
            SNS,
            r#"{"source":[{"suffix":{"equals-ignore-case":"EC2"}}]}"#,
            None,
            Invalid("FilterPolicy: suffix match pattern must be a string"),
        ),
        // equals-ignore-case
        (ALL, r#"{"source":[{"equals-ignore-case":"AWS.EC2"}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"equals-ignore-case":"STOPPED"}]}"#, None, Match(false)),
        (ALL, r#"{"flag":[{"equals-ignore-case":"TRUE"}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"source":[{"equals-ignore-case":1}]}"#, None, Invalid("equals-ignore-case match pattern must be a string")),
        (SNS, r#"{"source":[{"equals-ignore-case":1}]}"#, None, Invalid("FilterPolicy: equals-ignore-case match pattern must be a string")),
        // wildcard: EventBridge only
        (EVENTBRIDGE, r#"{"source":[{"wildcard":"aws.*2"}]}"#, None, Match(true)),
        (EVENTBRIDGE, r#"{"source":[{"wildcard":"aws.*3"}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"source":[{"wildcard":"a**b"}]}"#, None, Invalid("Consecutive wildcard characters are not allowed in a**b")),
        (SNS, r#"{"source":[{"wildcard":"aws.*2"}]}"#, None, Invalid("FilterPolicy: Unrecognized match type wildcard")),
        // anything-but
        (ALL, r#"{"state":[{"anything-but":"stopped"}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"anything-but":"running"}]}"#, None, Match(false)),
        (ALL, r#"{"state":[{"anything-but":["stopped","running"]}]}"#, None, Match(false)),
        (ALL, r#"{"count":[{"anything-but":[1,2]}]}"#, None, Match(true)),
        (ALL, r#"{"count":[{"anything-but":5}]}"#, None, Match(false)),
        (ALL, r#"{"missing":[{"anything-but":"x"}]}"#, None, Match(false)),
        (ALL, r#"{"tags":[{"anything-but":"red"}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"anything-but":{"prefix":"run"}}]}"#, None, Match(false)),
        (ALL, r#"{"state":[{"anything-but":{"prefix":"stop"}}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"anything-but":{"suffix":"ing"}}]}"#, None, Match(false)),
        (ALL, r#"{"state":[{"anything-but":{"suffix":"ped"}}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"anything-but":{"equals-ignore-case":"RUNNING"}}]}"#, None, Match(false)),
        (ALL, r#"{"state":[{"anything-but":{"equals-ignore-case":["STOPPED","x"]}}]}"#, None, Match(true)),
        // …on a value that is not a string: EventBridge matches it, SNS does not.
        (EVENTBRIDGE, r#"{"count":[{"anything-but":{"prefix":"x"}}]}"#, None, Match(true)),
        (SNS, r#"{"count":[{"anything-but":{"prefix":"x"}}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"count":[{"anything-but":{"equals-ignore-case":"x"}}]}"#, None, Match(true)),
        (SNS, r#"{"count":[{"anything-but":{"equals-ignore-case":"x"}}]}"#, None, Match(false)),
        // …lists of prefixes and wildcards: EventBridge only.
        (EVENTBRIDGE, r#"{"state":[{"anything-but":{"prefix":["stop","run"]}}]}"#, None, Match(false)),
        (
            SNS,
            r#"{"state":[{"anything-but":{"prefix":["stop","run"]}}]}"#,
            None,
            Invalid("FilterPolicy: prefix match pattern must be a string"),
        ),
        (EVENTBRIDGE, r#"{"state":[{"anything-but":{"wildcard":"r*g"}}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"state":[{"anything-but":{"wildcard":"s*p"}}]}"#, None, Match(true)),
        (
            SNS,
            r#"{"state":[{"anything-but":{"wildcard":"r*g"}}]}"#,
            None,
            Invalid("FilterPolicy: Unsupported anything-but pattern: wildcard"),
        ),
        // …mixed lists: SNS only.
        (
            EVENTBRIDGE,
            r#"{"state":[{"anything-but":["a",1]}]}"#,
            None,
            Invalid("Inside anything but list, start|null|boolean is not supported, and the list must hold only strings or only numbers."),
        ),
        (SNS, r#"{"state":[{"anything-but":["a",1]}]}"#, None, Match(true)),
        (
            EVENTBRIDGE,
            r#"{"state":[{"anything-but":true}]}"#,
            None,
            Invalid("Value of anything-but must be an array or single string/number value."),
        ),
        (
            SNS,
            r#"{"state":[{"anything-but":true}]}"#,
            None,
            Invalid("FilterPolicy: Inside anything but list, start|null|boolean is not supported."),
        ),
        (SNS, r#"{"state":[{"anything-but":[]}]}"#, None, Invalid("FilterPolicy: Empty arrays are not allowed")),
        (EVENTBRIDGE, r#"{"state":[{"anything-but":{"numeric":[">",1]}}]}"#, None, Invalid("Unsupported anything-but pattern: numeric")),
        (
            SNS,
            r#"{"state":[{"anything-but":{"numeric":[">",1]}}]}"#,
            None,
            Invalid("FilterPolicy: Unsupported anything-but pattern: numeric"),
        ),
        // numeric
        (ALL, r#"{"count":[{"numeric":[">",0,"<=",5]}]}"#, None, Match(true)),
        (ALL, r#"{"count":[{"numeric":[">",0,"<",5]}]}"#, None, Match(false)),
        (ALL, r#"{"count":[{"numeric":["<",5]}]}"#, None, Match(false)),
        (ALL, r#"{"count":[{"numeric":[">=",5]}]}"#, None, Match(true)),
        (ALL, r#"{"ratio":[{"numeric":["=",0.5]}]}"#, None, Match(true)),
        (ALL, r#"{"ratio":[{"numeric":["=",5e-1]}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"numeric":[">",0]}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"count":[{"numeric":[">",5,"<",1]}]}"#, None, Invalid("Bottom must be less than top")),
        (SNS, r#"{"count":[{"numeric":[">",5,"<",1]}]}"#, None, Invalid("FilterPolicy: Bottom must be less than top")),
        (
            EVENTBRIDGE,
            r#"{"count":[{"numeric":["<",1,">",0]}]}"#,
            None,
            Invalid("Bad numeric range: a lower bound (> or >=) then an upper bound (< or <=) is expected"),
        ),
        (SNS, r#"{"count":[{"numeric":["<",1,">",0]}]}"#, None, Invalid("FilterPolicy: Too many elements in numeric expression")),
        (EVENTBRIDGE, r#"{"count":[{"numeric":["~",1]}]}"#, None, Invalid(r#"Unrecognized numeric range operator: "~""#)),
        (SNS, r#"{"count":[{"numeric":["~",1]}]}"#, None, Invalid("FilterPolicy: Unrecognized numeric range operator: ~")),
        (EVENTBRIDGE, r#"{"count":[{"numeric":["=","x"]}]}"#, None, Invalid(r#"Value of "=" must be numeric"#)),
        (SNS, r#"{"count":[{"numeric":["=","x"]}]}"#, None, Invalid("FilterPolicy: Value of equals must be numeric")),
        (EVENTBRIDGE, r#"{"count":[{"numeric":[]}]}"#, None, Invalid("Empty numeric expression")),
        (SNS, r#"{"count":[{"numeric":[]}]}"#, None, Invalid("FilterPolicy: Invalid member in numeric match: ]")),
        (SNS, r#"{"count":[{"numeric":[">",0,"<",5,"<",6]}]}"#, None, Invalid("FilterPolicy: Too many terms in numeric range expression")),
        (EVENTBRIDGE, r#"{"count":[{"numeric":5}]}"#, None, Invalid("Value of numeric must be an array.")),
        (SNS, r#"{"count":[{"numeric":5}]}"#, None, Invalid("FilterPolicy: Value of numeric must be an array.")),
        // exists
        (ALL, r#"{"source":[{"exists":true}]}"#, None, Match(true)),
        (ALL, r#"{"source":[{"exists":false}]}"#, None, Match(false)),
        (ALL, r#"{"missing":[{"exists":false}]}"#, None, Match(true)),
        (ALL, r#"{"missing":[{"exists":true}]}"#, None, Match(false)),
        (ALL, r#"{"missing":["x",{"exists":false}]}"#, None, Match(true)),
        // …an object is no value; a binary attribute is present.
        (NESTED, r#"{"detail":[{"exists":true}]}"#, None, Match(false)),
        (&[ATTR], r#"{"detail":[{"exists":true}]}"#, None, Match(true)),
        (NESTED, r#"{"detail":{"missing":[{"exists":false}]}}"#, None, Match(true)),
        (EVENTBRIDGE, r#"{"source":[{"exists":"yes"}]}"#, None, Invalid("exists match pattern must be either true or false.")),
        (SNS, r#"{"source":[{"exists":"yes"}]}"#, None, Invalid("FilterPolicy: exists match pattern must be either true or false.")),
        // cidr
        (ALL, r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, None, Match(true)),
        (ALL, r#"{"ip":[{"cidr":"10.0.1.0/24"}]}"#, None, Match(false)),
        (ALL, r#"{"ip":[{"cidr":"::/0"}]}"#, None, Match(false)),
        (ALL, r#"{"v6":[{"cidr":"2001:db8::/32"}]}"#, None, Match(true)),
        (ALL, r#"{"state":[{"cidr":"0.0.0.0/0"}]}"#, None, Match(false)),
        (EVENTBRIDGE, r#"{"ip":[{"cidr":"10.0.0.0"}]}"#, None, Invalid("Nonstandard IP address: 10.0.0.0")),
        (SNS, r#"{"ip":[{"cidr":"10.0.0.0"}]}"#, None, Invalid("FilterPolicy: Malformed CIDR, one '/' required")),
        (EVENTBRIDGE, r#"{"ip":[{"cidr":"10.0.0.0/x"}]}"#, None, Invalid("Nonstandard IP address: 10.0.0.0/x")),
        (SNS, r#"{"ip":[{"cidr":"10.0.0.0/x"}]}"#, None, Invalid("FilterPolicy: Malformed CIDR, mask bits must be an integer")),
        (EVENTBRIDGE, r#"{"ip":[{"cidr":"10.0.0.0/33"}]}"#, None, Invalid("Nonstandard IP address: 10.0.0.0/33")),
        (SNS, r#"{"ip":[{"cidr":"10.0.0.0/33"}]}"#, None, Invalid("FilterPolicy: Nonstandard IP address: 10.0.0.0")),
        (EVENTBRIDGE, r#"{"ip":[{"cidr":1}]}"#, None, Invalid("cidr match pattern must be a string")),
        (SNS, r#"{"ip":[{"cidr":1}]}"#, None, Invalid("FilterPolicy: prefix match pattern must be a string")),
        // match expressions
        (EVENTBRIDGE, r#"{"source":[{"foo":"x"}]}"#, None, Invalid("Unrecognized match type foo")),
        (SNS, r#"{"source":[{"foo":"x"}]}"#, None, Invalid("FilterPolicy: Unrecognized match type foo")),
        (
            EVENTBRIDGE,
            r#"{"source":[{"prefix":"a","suffix":"b"}]}"#,
            None,
            Invalid(r#"Match expressions must have exactly one key ("source")"#),
        ),
        (SNS, r#"{"source":[{"prefix":"a","suffix":"b"}]}"#, None, Invalid("FilterPolicy: Only one key allowed in match expression")),
        // $or
        (ALL, r#"{"$or":[{"source":["x"]},{"state":["running"]}]}"#, None, Match(true)),
        (ALL, r#"{"$or":[{"source":["x"]},{"state":["x"]}]}"#, None, Match(false)),
        (ALL, r#"{"source":["aws.ec2"],"$or":[{"count":[1]},{"tags":["red"]}]}"#, None, Match(true)),
        (ALL, r#"{"source":["x"],"$or":[{"count":[5]},{"tags":["red"]}]}"#, None, Match(false)),
        (ALL, r#"{"$or":[{"count":[1]},{"$or":[{"state":["x"]},{"flag":[true]}]}]}"#, None, Match(true)),
        (EVENTBRIDGE, r#"{"$or":[{"source":["x"]},{}]}"#, None, Invalid("Empty objects are not allowed in $or")),
        (SNS, r#"{"$or":[{"source":["x"]},{}]}"#, None, Match(true)),
        // nested keys
        (NESTED, r#"{"detail":{"kind":["Order"]}}"#, None, Match(true)),
        (NESTED, r#"{"detail":{"kind":["order"]}}"#, None, Match(false)),
        (NESTED, r#"{"detail":{"total":[{"numeric":[">",100]}]}}"#, None, Match(true)),
        (NESTED, r#"{"detail":{"items":{"sku":["b"]}}}"#, None, Match(true)),
        (NESTED, r#"{"detail":{"items":{"sku":["a"],"qty":[2]}}}"#, None, Match(true)),
        (NESTED, r#"{"detail":{"$or":[{"kind":["x"]},{"total":[150]}]}}"#, None, Match(true)),
        // …fields of one object inside an array: one element in EventBridge, any in SNS.
        (EVENTBRIDGE, r#"{"detail":{"items":{"sku":["a"],"qty":[5]}}}"#, None, Match(false)),
        (&[BODY], r#"{"detail":{"items":{"sku":["a"],"qty":[5]}}}"#, None, Match(true)),
        (
            &[ATTR],
            r#"{"detail":{"kind":["Order"]}}"#,
            None,
            Invalid("Filter policy scope MessageAttributes does not support nested filter policy"),
        ),
        (EVENTBRIDGE, r#"{"detail":{"kind":"Order"}}"#, None, Invalid(r#""kind" must be an object or an array"#)),
        (&[BODY], r#"{"detail":{"kind":"Order"}}"#, None, Invalid(r#"FilterPolicy: "kind" must be an object or an array"#)),
        // the whole rule
        (EVENTBRIDGE, "{}", None, Invalid("Empty event pattern is not allowed")),
        (SNS, "{}", None, Match(true)),
        (EVENTBRIDGE, "[]", None, Invalid("Filter is not an object")),
        (SNS, "[]", None, Invalid("FilterPolicy: Filter policy must be a JSON object")),
        (SNS, "not json", None, Invalid("FilterPolicy: failed to parse JSON.")),
        (EVENTBRIDGE, "not json", None, Invalid("expected ident at line 1 column 2")),
        (
            SNS,
            r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
            None,
            Invalid("FilterPolicy: Filter policy can not have more than 5 keys"),
        ),
        (
            EVENTBRIDGE,
            r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
            Some(r#"{"a":"1","b":"1","c":"1","d":"1","e":"1","f":"1"}"#),
            Match(true),
        ),
        // other events: arrays of arrays, a null field, numbers as text
        (NESTED, r#"{"tags":["c"]}"#, Some(r#"{"tags":["a",["b","c"]]}"#), Match(true)),
        // …a String.Array attribute's values are its scalars: nested arrays are not looked into.
        (&[ATTR], r#"{"tags":["c"]}"#, Some(r#"{"tags":["a",["b","c"]]}"#), Match(false)),
        (&[ATTR], r#"{"tags":["a"]}"#, Some(r#"{"tags":["a",["b","c"]]}"#), Match(true)),
        (ALL, r#"{"n":[{"exists":true}]}"#, Some(r#"{"n":null}"#), Match(true)),
        (ALL, r#"{"n":[{"numeric":[">",1]}]}"#, Some(r#"{"n":"2"}"#), Match(false)),
    ]
}

/// The event as the attribute scope sees it (see [`EVENT`]).
fn flat(event: &Value) -> impl Fn(&str) -> Option<Vec<Scalar>> + '_ {
    move |name| {
        Some(match event.get(name)? {
            Value::Array(items) => items.iter().filter_map(Scalar::from_json).collect(),
            Value::Object(_) => Vec::new(),
            v => Scalar::from_json(v).into_iter().collect(),
        })
    }
}

#[test]
fn every_operator_in_every_dialect() {
    let default: Value = serde_json::from_str(EVENT).expect("event");
    let mut rows = 0;
    for (dialects, pattern, event, expected) in table() {
        let event: Value = event.map_or_else(|| default.clone(), |e| serde_json::from_str(e).expect("event"));
        for &dialect in dialects {
            rows += 1;
            let compiled = Pattern::parse(dialect, pattern);
            match (&expected, compiled) {
                (Match(want), Ok(p)) => {
                    let got = match dialect {
                        ATTR => p.matches_flat(&flat(&event)),
                        _ => p.matches(&event),
                    };
                    assert_eq!(got, *want, "{dialect:?} {pattern} on {event}");
                }
                (Invalid(reason), Err(e)) => {
                    let message = match dialect {
                        EB => format!("Event pattern is not valid. Reason: {reason}"),
                        FC => format!("Invalid filter pattern definition. Event pattern is not valid. Reason: {reason}"),
                        _ => reason.to_string(),
                    };
                    assert_eq!(e.message(), message, "{dialect:?} {pattern}");
                }
                (Match(_), Err(e)) => panic!("{dialect:?} {pattern}: refused: {e}"),
                (Invalid(reason), Ok(_)) => panic!("{dialect:?} {pattern}: accepted, expected {reason}"),
            }
        }
    }
    assert!(rows > 250, "{rows} rows");
}

#[test]
fn sns_limits() {
    let many: Vec<String> = (0..151).map(|i| format!("\"v{i}\"")).collect();
    let policy = format!(r#"{{"a":[{}]}}"#, many.join(","));
    for scope in [Scope::MessageAttributes, Scope::MessageBody] {
        let e = Pattern::parse(Dialect::FilterPolicy(scope), &policy).expect_err("too complex");
        assert_eq!(e.message(), "FilterPolicy: Filter policy is too complex");
    }
    // EventBridge has no such limit.
    Pattern::parse(EB, &policy).expect("a long list");
    // Values of nested keys count once per level: 50 values two levels down are 100.
    let fifty: Vec<String> = (0..50).map(|i| format!("\"v{i}\"")).collect();
    let nested = format!(r#"{{"a":{{"b":[{}]}}}}"#, fifty.join(","));
    Pattern::parse(BODY, &nested).expect("100 combinations");
    let seventy_six: Vec<String> = (0..76).map(|i| format!("\"v{i}\"")).collect();
    let nested = format!(r#"{{"a":{{"b":[{}]}}}}"#, seventy_six.join(","));
    assert_eq!(Pattern::parse(BODY, &nested).expect_err("152").message(), "FilterPolicy: Filter policy is too complex");
    // $or adds its alternatives' combinations.
    let or = r#"{"$or":[{"a":["1","2"]},{"b":["1","2","3"]}],"c":["1","2"]}"#;
    Pattern::parse(ATTR, or).expect("10 combinations");
    let big = "x".repeat(256 * 1024);
    let too_large = format!(r#"{{"a":["{big}"]}}"#);
    assert_eq!(Pattern::parse(ATTR, &too_large).expect_err("large").message(), "FilterPolicy: Filter policy is too large");
    Pattern::parse(EB, &too_large).expect("EventBridge leaves length limits to its callers");
}

#[test]
fn empty_and_dialect() {
    for scope in [Scope::MessageAttributes, Scope::MessageBody] {
        let p = Pattern::parse(Dialect::FilterPolicy(scope), "{}").expect("empty policy");
        assert!(p.is_empty());
        assert!(p.matches(&json!({})));
        assert!(p.matches_flat(&|_| None));
        assert_eq!(p.dialect(), Dialect::FilterPolicy(scope));
    }
    assert!(!Pattern::parse(EB, r#"{"a":["b"]}"#).expect("pattern").is_empty());
    // A flat set has no nested keys: a nested field sees nothing there.
    let values = |name: &str| (name == "a").then(|| vec![Scalar::Str("b".into())]);
    assert!(Pattern::parse(EB, r#"{"a":{"b":[{"exists":false}]}}"#).expect("pattern").matches_flat(&values));
    assert!(!Pattern::parse(EB, r#"{"a":{"b":["b"]}}"#).expect("pattern").matches_flat(&values));
    assert!(Pattern::parse(EB, r#"{"a":["b"],"$or":[{"a":["x"]},{"c":[{"exists":false}]}]}"#).expect("pattern").matches_flat(&values));
    assert_eq!(Scope::parse("MessageBody"), Some(Scope::MessageBody));
    assert_eq!(Scope::parse("Body"), None);
    assert_eq!(Scope::MessageAttributes.as_str(), "MessageAttributes");
    assert_eq!(Scope::default(), Scope::MessageAttributes);
}
