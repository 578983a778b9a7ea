//! Tables for the legacy parameters' translation: each operator, `Exists`, `AND`/`OR`, the
//! refusals of mixed parameters and of wrong argument counts.

use serde_json::{json, Value};

use super::*;
use crate::value::Item;

fn item(json: Value) -> Item {
    let wire: BTreeMap<String, WireValue> = serde_json::from_value(json).unwrap();
    crate::value::item_from_wire(wire).unwrap()
}

fn error(result: Result<impl std::fmt::Debug, TableError>) -> String {
    match result.unwrap_err() {
        TableError::Validation(text) | TableError::Serialization(text) => text,
        other => panic!("{other:?}"),
    }
}

fn sample() -> Item {
    item(json!({
        "s": {"S": "hello"}, "n": {"N": "5"}, "b": {"B": "aGkgdGhlcmU="},
        "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["2", "4"]}, "l": {"L": [{"N": "1"}, {"S": "x"}]},
    }))
}

fn filter_holds(attr: &str, op: &str, values: Value) -> bool {
    let json = json!({ attr: {"ComparisonOperator": op, "AttributeValueList": values} });
    filter(&json, "ScanFilter", false).unwrap().unwrap().evaluate(&sample())
}

#[test]
fn every_filter_operator() {
    let cases: &[(&str, &str, Value, bool)] = &[
        ("n", "EQ", json!([{"N": "5"}]), true),
        ("n", "EQ", json!([{"S": "5"}]), false),
        ("n", "NE", json!([{"N": "5"}]), false),
        ("missing", "NE", json!([{"N": "5"}]), true),
        ("n", "LE", json!([{"N": "5"}]), true),
        ("n", "LT", json!([{"N": "5"}]), false),
        ("n", "GE", json!([{"N": "5"}]), true),
        ("n", "GT", json!([{"N": "4"}]), true),
        ("s", "GT", json!([{"N": "4"}]), false),
        ("s", "NOT_NULL", json!([]), true),
        ("missing", "NOT_NULL", json!([]), false),
        ("missing", "NULL", json!([]), true),
        ("s", "NULL", json!([]), false),
        ("s", "CONTAINS", json!([{"S": "ell"}]), true),
        ("ss", "CONTAINS", json!([{"S": "b"}]), true),
        ("ns", "CONTAINS", json!([{"N": "3"}]), false),
        ("l", "CONTAINS", json!([{"S": "x"}]), true),
        ("b", "CONTAINS", json!([{"B": "dGhlcmU="}]), true),
        ("s", "NOT_CONTAINS", json!([{"S": "dog"}]), true),
        ("ss", "NOT_CONTAINS", json!([{"S": "a"}]), false),
        // False on a missing attribute, as DynamoDB does (Alternator test_expected.py).
        ("missing", "NOT_CONTAINS", json!([{"S": "a"}]), false),
        ("s", "BEGINS_WITH", json!([{"S": "hel"}]), true),
        ("s", "BEGINS_WITH", json!([{"S": "el"}]), false),
        ("b", "BEGINS_WITH", json!([{"B": "aGk="}]), true),
        ("n", "IN", json!([{"N": "1"}, {"N": "5"}]), true),
        ("n", "IN", json!([{"N": "1"}, {"N": "2"}]), false),
        ("n", "BETWEEN", json!([{"N": "1"}, {"N": "5"}]), true),
        ("n", "BETWEEN", json!([{"N": "6"}, {"N": "9"}]), false),
        ("s", "BETWEEN", json!([{"S": "a"}, {"S": "i"}]), true),
    ];
    for (attr, op, values, expected) in cases {
        assert_eq!(filter_holds(attr, op, values.clone()), *expected, "{attr} {op} {values}");
    }
}

#[test]
fn and_or() {
    let json = json!({
        "n": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "5"}]},
        "s": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "nope"}]},
    });
    assert!(!filter(&json, "QueryFilter", false).unwrap().unwrap().evaluate(&sample()));
    assert!(filter(&json, "QueryFilter", true).unwrap().unwrap().evaluate(&sample()));
    assert!(is_or(Some(&json!("OR"))).unwrap());
    assert!(!is_or(Some(&json!("AND"))).unwrap());
    assert!(!is_or(None).unwrap());
    assert_eq!(
        error(is_or(Some(&json!("XOR")))),
        "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [AND, OR]"
    );
    assert!(filter(&json!({}), "ScanFilter", false).unwrap().is_none());
}

#[test]
fn argument_counts_and_types() {
    let cases: &[(&str, Value, &str)] = &[
        ("EQ", json!([]), "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        (
            "EQ",
            json!([{"N": "1"}, {"N": "2"}]),
            "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator",
        ),
        (
            "NULL",
            json!([{"N": "1"}]),
            "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator",
        ),
        ("IN", json!([]), "One or more parameter values were invalid: Invalid number of argument(s) for the IN ComparisonOperator"),
        (
            "BETWEEN",
            json!([{"N": "1"}]),
            "One or more parameter values were invalid: Invalid number of argument(s) for the BETWEEN ComparisonOperator",
        ),
        (
            "IN",
            json!([{"N": "1"}, {"S": "a"}]),
            "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type",
        ),
        (
            "BEGINS_WITH",
            json!([{"N": "1"}]),
            "One or more parameter values were invalid: ComparisonOperator BEGINS_WITH is not valid for N AttributeValue type",
        ),
        (
            "CONTAINS",
            json!([{"L": []}]),
            "One or more parameter values were invalid: ComparisonOperator CONTAINS is not valid for L AttributeValue type",
        ),
        (
            "LT",
            json!([{"SS": ["a"]}]),
            "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type",
        ),
        (
            "BETWEEN",
            json!([{"N": "5"}, {"N": "1"}]),
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ),
    ];
    for (op, values, text) in cases {
        let json = json!({"a": {"ComparisonOperator": op, "AttributeValueList": values}});
        assert_eq!(error(filter(&json, "ScanFilter", false)), *text, "{op} {values}");
    }
    let json = json!({"a": {"ComparisonOperator": "SOMETIMES", "AttributeValueList": []}});
    assert!(error(filter(&json, "ScanFilter", false)).contains("Value 'SOMETIMES' at 'scanFilter.a.member.comparisonOperator'"));
}

fn expected_holds(json: Value, or: bool, on: &Item) -> bool {
    expected(&json, or).unwrap().unwrap().evaluate(on)
}

#[test]
fn expected_value_and_exists() {
    let on = sample();
    assert!(expected_holds(json!({"n": {"Value": {"N": "5"}}}), false, &on));
    assert!(!expected_holds(json!({"n": {"Value": {"N": "6"}}}), false, &on));
    assert!(!expected_holds(json!({"missing": {"Value": {"N": "5"}}}), false, &on));
    assert!(expected_holds(json!({"n": {"Value": {"N": "5"}, "Exists": true}}), false, &on));
    assert!(!expected_holds(json!({"n": {"Value": {"N": "4"}, "Exists": true}}), false, &on));
    assert!(expected_holds(json!({"missing": {"Exists": false}}), false, &on));
    assert!(!expected_holds(json!({"n": {"Exists": false}}), false, &on));
    // A missing item is an empty one.
    assert!(expected_holds(json!({"n": {"Exists": false}}), false, &Item::new()));
    // ComparisonOperator with Value instead of AttributeValueList.
    assert!(expected_holds(json!({"n": {"ComparisonOperator": "GT", "Value": {"N": "1"}}}), false, &on));
    assert!(expected_holds(json!({"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "9"}]}}), false, &on));
    let both = json!({"n": {"Value": {"N": "5"}}, "s": {"Exists": false}});
    assert!(!expected_holds(both.clone(), false, &on));
    assert!(expected_holds(both, true, &on));
}

#[test]
fn expected_refusals() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"a": {"Value": {"N": "1"}, "AttributeValueList": [{"N": "1"}]}}),
            "Value and AttributeValueList cannot be used together for Attribute: a",
        ),
        (
            json!({"a": {"ComparisonOperator": "EQ", "Exists": true, "AttributeValueList": [{"N": "1"}]}}),
            "Exists and ComparisonOperator cannot be used together for Attribute: a",
        ),
        (
            json!({"a": {"ComparisonOperator": "EQ"}}),
            "Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a",
        ),
        (
            json!({"a": {"AttributeValueList": [{"N": "1"}]}}),
            "AttributeValueList can only be used with a ComparisonOperator for Attribute: a",
        ),
        (json!({"a": {}}), "Value must be provided when Exists is null for Attribute: a"),
        (json!({"a": {"Exists": true}}), "Value must be provided when Exists is true for Attribute: a"),
        (json!({"a": {"Exists": false, "Value": {"N": "1"}}}), "Value cannot be used when Exists is false for Attribute: a"),
        (
            json!({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}}),
            "Invalid number of argument(s) for the BETWEEN ComparisonOperator",
        ),
    ];
    for (json, text) in cases {
        assert_eq!(error(expected(json, false)), format!("One or more parameter values were invalid: {text}"), "{json}");
    }
}

#[test]
fn key_conditions_translate() {
    let json = json!({
        "p": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
        "s": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "ab"}]},
    });
    let q = key_conditions(&json).unwrap().for_schema("p", Some("s")).unwrap();
    assert_eq!(q.partition, AttributeValue::s("x"));
    assert_eq!(q.sort, Some(crate::expr::SortCondition::BeginsWith(AttributeValue::s("ab"))));
    for (op, values, sort) in [
        ("LT", json!([{"N": "3"}]), crate::expr::SortCondition::Lt(AttributeValue::n("3"))),
        ("LE", json!([{"N": "3"}]), crate::expr::SortCondition::Le(AttributeValue::n("3"))),
        ("GT", json!([{"N": "3"}]), crate::expr::SortCondition::Gt(AttributeValue::n("3"))),
        ("GE", json!([{"N": "3"}]), crate::expr::SortCondition::Ge(AttributeValue::n("3"))),
        ("EQ", json!([{"N": "3"}]), crate::expr::SortCondition::Eq(AttributeValue::n("3"))),
        ("BETWEEN", json!([{"N": "1"}, {"N": "3"}]), crate::expr::SortCondition::Between(AttributeValue::n("1"), AttributeValue::n("3"))),
    ] {
        let json = json!({
            "p": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
            "s": {"ComparisonOperator": op, "AttributeValueList": values},
        });
        assert_eq!(key_conditions(&json).unwrap().for_schema("p", Some("s")).unwrap().sort, Some(sort), "{op}");
    }
    let only_hash = json!({"p": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}});
    assert_eq!(key_conditions(&only_hash).unwrap().for_schema("p", Some("s")).unwrap().sort, None);
    let ne = json!({"p": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "x"}]}});
    assert_eq!(error(key_conditions(&ne)), "Attempted conditional constraint is not an indexable operation");
    assert_eq!(error(key_conditions(&json!({}))), "Conditions can be of length 1 or 2 only");
    let bad = json!({"p": {"ComparisonOperator": "EQ", "AttributeValueList": []}});
    assert_eq!(
        error(key_conditions(&bad)),
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );
}

#[test]
fn attributes_to_get_projects() {
    let projection = attributes_to_get(Some(&json!(["n", "s", "missing"]))).unwrap().unwrap();
    assert_eq!(projection.apply(&sample()), item(json!({"n": {"N": "5"}, "s": {"S": "hello"}})));
    assert_eq!(
        error(attributes_to_get(Some(&json!(["n", "n"])))),
        "One or more parameter values were invalid: Duplicate value in attribute name: n"
    );
    assert!(attributes_to_get(None).unwrap().is_none());
}

fn updated(json: Value, on: Item) -> Result<Item, TableError> {
    let update = attribute_updates(&json)?.unwrap();
    let mut on = on;
    update.apply(&mut on)?;
    Ok(on)
}

#[test]
fn attribute_updates_actions() {
    let on = sample();
    let out = updated(
        json!({
            "s": {"Action": "PUT", "Value": {"S": "bye"}},
            "n": {"Action": "ADD", "Value": {"N": "2"}},
            "new_n": {"Action": "ADD", "Value": {"N": "7"}},
            "ss": {"Action": "ADD", "Value": {"SS": ["c"]}},
            "ns": {"Action": "DELETE", "Value": {"NS": ["2"]}},
            "b": {"Action": "DELETE"},
            "l": {"Action": "ADD", "Value": {"L": [{"N": "9"}]}},
            "new_l": {"Action": "ADD", "Value": {"L": [{"N": "9"}]}},
            "d": {"Value": {"BOOL": true}},
        }),
        on,
    )
    .unwrap();
    assert_eq!(
        out,
        item(json!({
            "s": {"S": "bye"}, "n": {"N": "7"}, "new_n": {"N": "7"}, "ss": {"SS": ["a", "b", "c"]}, "ns": {"NS": ["4"]},
            "l": {"L": [{"N": "1"}, {"S": "x"}, {"N": "9"}]}, "new_l": {"L": [{"N": "9"}]}, "d": {"BOOL": true},
        }))
    );
    assert!(attribute_updates(&json!({})).unwrap().is_none());
}

#[test]
fn attribute_updates_refusals() {
    let cases: &[(Value, &str)] = &[
        (json!({"a": {"Action": "PUT"}}), "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"),
        (json!({"a": {"Action": "ADD"}}), "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"),
        (json!({"a": {"Action": "DELETE", "Value": {"N": "1"}}}), "One or more parameter values were invalid: DELETE action with value is not supported for the type N"),
        (json!({"a": {"Action": "ADD", "Value": {"S": "x"}}}), "One or more parameter values were invalid: ADD action is not supported for the type S"),
        (json!({"a": {"Action": "SWAP", "Value": {"S": "x"}}}), "1 validation error detected: Value 'SWAP' at 'attributeUpdates.a.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"),
    ];
    for (json, text) in cases {
        assert_eq!(error(attribute_updates(json)), *text, "{json}");
    }
}

#[test]
fn mixing_refusals() {
    assert_eq!(
        error(check_mixing(&[("ProjectionExpression", true)], &[("AttributesToGet", true)], false, false)),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
    );
    assert_eq!(
        error(check_mixing(
            &[("UpdateExpression", true), ("ConditionExpression", true)],
            &[("AttributeUpdates", true), ("Expected", true), ("ConditionalOperator", false)],
            false,
            false
        )),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributeUpdates, Expected} Expression parameters: {UpdateExpression, ConditionExpression}"
    );
    // KeyConditions goes with a FilterExpression, not with a KeyConditionExpression.
    let query = |key_expression: bool| {
        check_mixing(
            &[("ProjectionExpression", false), ("FilterExpression", true), ("KeyConditionExpression", key_expression)],
            &[("AttributesToGet", false), ("QueryFilter", false), ("ConditionalOperator", false), ("KeyConditions", true)],
            false,
            true,
        )
    };
    query(false).unwrap();
    assert_eq!(
        error(query(true)),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {KeyConditions} Expression parameters: {FilterExpression, KeyConditionExpression}"
    );
    assert_eq!(
        error(check_mixing(&[("ConditionExpression", false)], &[("Expected", true)], true, false)),
        "ExpressionAttributeNames can only be specified when using expressions"
    );
    assert_eq!(
        error(check_mixing(&[("ConditionExpression", false)], &[("Expected", true)], false, true)),
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    );
    assert_eq!(
        error(check_mixing(&[("UpdateExpression", false), ("ConditionExpression", false)], &[], false, true)),
        "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null"
    );
    check_mixing(&[("ProjectionExpression", false)], &[("AttributesToGet", true)], false, false).unwrap();
}
