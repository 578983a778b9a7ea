//! Tables of expressions: what parses, what DynamoDB refuses and in which words, and what
//! evaluates to what against one item.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::value::Item;

fn item(value: Value) -> Item {
    serde_json::from_value(value).expect("a valid item")
}

fn values(value: Value) -> BTreeMap<String, AttributeValue> {
    serde_json::from_value(value).expect("valid values")
}

/// The placeholders every parse table uses.
fn standard() -> Placeholders {
    let names = [("#n", "name"), ("#s", "status"), ("#a", "a"), ("#dot", "a.b"), ("#k", "pk")];
    let names = names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let values = values(json!({
        ":s": {"S": "x"}, ":s2": {"S": "y"}, ":n": {"N": "1"}, ":m": {"N": "2"}, ":b": {"B": "AQI="},
        ":l": {"L": [{"S": "z"}]}, ":ss": {"SS": ["a", "b"]}, ":ns": {"NS": ["1", "2"]}, ":bs": {"BS": ["AQ=="]},
        ":x": {"S": "X"}, ":tS": {"S": "S"}, ":null": {"NULL": true}, ":t": {"BOOL": true}, ":map": {"M": {"k": {"S": "v"}}}
    }));
    Placeholders::new(Some(names), Some(values)).expect("valid placeholders")
}

fn condition_error(text: &str) -> String {
    match Condition::parse(text, ExpressionKind::Condition, &mut standard()) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn condition_syntax_errors_name_the_token_and_its_neighbours() {
    let cases: &[(&str, &str)] = &[
        ("a = ", r#"Syntax error; token: "<EOF>", near: "=""#),
        ("a != :s", r#"Syntax error; token: "!", near: "a !=""#),
        ("a = 1", r#"Syntax error; token: "1", near: "= 1""#),
        ("a = :s AND", r#"Syntax error; token: "<EOF>", near: "AND""#),
        ("a = :s b = :n", r#"Syntax error; token: "b", near: ":s b =""#),
        ("a BETWEEN :n", r#"Syntax error; token: "<EOF>", near: ":n""#),
        ("a BETWEEN :n OR :m", r#"Syntax error; token: "OR", near: ":n OR :m""#),
        ("a IN :n", r#"Syntax error; token: ":n", near: "IN :n""#),
        ("a IN ()", r#"Syntax error; token: ")", near: "()""#),
        ("attribute_exists(a", r#"Syntax error; token: "<EOF>", near: "a""#),
        ("(a = :s", r#"Syntax error; token: "<EOF>", near: ":s""#),
        ("a = :s OR OR b = :n", r#"Syntax error; token: "OR", near: "OR OR b""#),
        ("a.b. = :s", r#"Syntax error; token: "=", near: ". = :s""#),
        ("a[x] = :s", r#"Syntax error; token: "x", near: "[x]""#),
        ("a[1 = :s", r#"Syntax error; token: "=", near: "1 = :s""#),
        ("#", r##"Syntax error; token: "#", near: "#""##),
        ("a = :", r#"Syntax error; token: ":", near: "= :""#),
        ("a = :s ;", r#"Syntax error; token: ";", near: ":s ;""#),
        ("a", r#"Syntax error; token: "<EOF>", near: "a""#),
        ("a =", r#"Syntax error; token: "<EOF>", near: "=""#),
        ("= :s", r#"Syntax error; token: "=", near: "= :s""#),
        ("NOT", r#"Syntax error; token: "<EOF>", near: "NOT""#),
        ("a = AND", r#"Syntax error; token: "AND", near: "= AND""#),
        ("a == :s", r#"Syntax error; token: "=", near: "== :s""#),
        ("a = :s)", r#"Syntax error; token: ")", near: ":s)""#),
        ("!!! INVALID !!!", r#"Syntax error; token: "!", near: "!!""#),
        ("a = :s AND (b = :n", r#"Syntax error; token: "<EOF>", near: ":n""#),
        ("a < > :s", r#"Syntax error; token: ">", near: "< > :s""#),
        ("a = #", r##"Syntax error; token: "#", near: "= #""##),
    ];
    for (text, reason) in cases {
        assert_eq!(condition_error(text), format!("Invalid ConditionExpression: {reason}"), "{text}");
    }
}

#[test]
fn condition_semantic_errors_in_dynamodb_order() {
    let hundred_and_one = (0..101).map(|_| ":n").collect::<Vec<_>>().join(", ");
    let in_list = format!("a IN ({hundred_and_one})");
    let long = format!("a = :s{}", " ".repeat(4096));
    let cases: Vec<(&str, String)> = vec![
        ("", "The expression can not be empty;".into()),
        (&long, format!("Expression size has exceeded the maximum allowed size; expression size: {}", long.len())),
        ("((a = :s))", "The expression has redundant parentheses;".into()),
        ("((a)) = :s", "The expression has redundant parentheses;".into()),
        ("a = ((:s))", "The expression has redundant parentheses;".into()),
        ("((status = :nope))", "The expression has redundant parentheses;".into()),
        ("foo(a)", "Invalid function name; function: foo".into()),
        ("foo(status)", "Invalid function name; function: foo".into()),
        ("a = begins_with(b, :s)", "The function is not allowed to be used this way in an expression; function: begins_with".into()),
        ("attribute_exists(a) = :t", "The function is not allowed to be used this way in an expression; function: attribute_exists".into()),
        ("size(a)", "The function is not allowed to be used this way in an expression; function: size".into()),
        ("status = :s", "Attribute name is a reserved keyword; reserved keyword: status".into()),
        ("a.Name = :s", "Attribute name is a reserved keyword; reserved keyword: Name".into()),
        ("status = :nope", "Attribute name is a reserved keyword; reserved keyword: status".into()),
        ("#x = :s", "An expression attribute name used in the document path is not defined; attribute name: #x".into()),
        ("a = :nope", "An expression attribute value used in expression is not defined; attribute value: :nope".into()),
        ("a = :nope AND #x = :s", "An expression attribute value used in expression is not defined; attribute value: :nope".into()),
        ("attribute_exists(a, b)", "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2".into()),
        ("begins_with(a)", "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1".into()),
        ("size(a, b) > :n", "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2".into()),
        ("a = a", "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]".into()),
        ("a.b[1] <> a.b[1]", "The first operand must be distinct from the remaining operands for this operator or function; operator: <>, first operand: [a, b, [1]]".into()),
        ("#a = a", "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]".into()),
        ("begins_with(a, a)", "The first operand must be distinct from the remaining operands for this operator or function; operator: begins_with, first operand: [a]".into()),
        ("attribute_exists(:s)", "Operator or function requires a document path; operator or function: attribute_exists".into()),
        ("attribute_not_exists(:s)", "Operator or function requires a document path; operator or function: attribute_not_exists".into()),
        ("begins_with(a, :n)", "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N".into()),
        ("begins_with(a, :ss)", "Incorrect operand type for operator or function; operator or function: begins_with, operand type: SS".into()),
        ("attribute_type(a, :n)", "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N".into()),
        ("attribute_type(a, b)", "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}".into()),
        ("attribute_type(a, :x)", "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}".into()),
        ("size(:n) > :n", "Incorrect operand type for operator or function; operator or function: size, operand type: N".into()),
        ("size(:t) > :n", "Incorrect operand type for operator or function; operator or function: size, operand type: BOOL".into()),
        ("a BETWEEN :n AND :s", "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:x}".into()),
        ("a BETWEEN :m AND :n", "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}".into()),
        ("a BETWEEN :s2 AND :s", "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:y}, upper bound operand: AttributeValue: {S:x}".into()),
        (&in_list, "The IN operator is provided with too many operands; number of operands: 101".into()),
    ];
    for (text, reason) in &cases {
        assert_eq!(condition_error(text), format!("Invalid ConditionExpression: {reason}"), "{text}");
    }
}

#[test]
fn valid_conditions_parse() {
    let cases = [
        "a = :s",
        "a <> :s AND b < :n OR c <= :n AND NOT d > :n",
        "a >= :n",
        "a BETWEEN :n AND :m",
        "a between :n and :m",
        "a IN (:n, :m, :s)",
        "a in (:n)",
        "attribute_exists(a.b[0].c)",
        "attribute_not_exists(#n)",
        "attribute_type(a, :tS)",
        "begins_with(a, :s)",
        "begins_with(a, :b)",
        "contains(a, :s)",
        "contains(a, b)",
        "size(a) > :n",
        "size(a) BETWEEN :n AND :m",
        "(a = :s)",
        "(a = :s) AND (b = :n)",
        "NOT (a = :s)",
        "NOT NOT a = :s",
        "(a) = :s",
        "(size(a)) > :n",
        "#dot = :s",
        "a.#n[3] = :s",
        "  a   =   :s  ",
        "a=:s",
        "_private = :s",
        "a1.b_2 = :s",
        ":s = a",
        ":s = :s2",
        "a[0][1] = :s",
    ];
    for text in cases {
        assert_eq!(condition_error(text), "ok", "{text}");
    }
}

#[test]
fn filter_expressions_are_named_as_filters() {
    let error = Condition::parse("a = ", ExpressionKind::Filter, &mut standard()).expect_err("a syntax error");
    assert_eq!(error.to_string(), r#"Invalid FilterExpression: Syntax error; token: "<EOF>", near: "=""#);
}

fn sample() -> Item {
    item(json!({
        "pk": {"S": "p1"}, "name": {"S": "Alice"}, "age": {"N": "30"}, "score": {"N": "1.50"},
        "tags": {"SS": ["red", "blue"]}, "nums": {"NS": ["1", "2"]}, "bins": {"BS": ["AQ==", "Ag=="]}, "bin": {"B": "AQID"},
        "lst": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"x": {"S": "y"}}}]},
        "mp": {"M": {"inn": {"M": {"v": {"N": "5"}}}, "s": {"S": "hello"}}},
        "flag": {"BOOL": true}, "nothing": {"NULL": true}, "blank": {"S": ""}, "unicode": {"S": "é"}
    }))
}

fn eval_placeholders() -> Placeholders {
    let names = [("#n", "name"), ("#dot", "a.b")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let values = values(json!({
        ":n1": {"N": "1"}, ":n2": {"N": "2"}, ":n3": {"N": "3"}, ":n5": {"N": "5"}, ":n30": {"N": "30"}, ":n30x": {"N": "30.000"},
        ":n100": {"N": "100"}, ":n15": {"N": "1.5"}, ":neg": {"N": "-1E+2"}, ":s30": {"S": "30"}, ":al": {"S": "Al"}, ":bob": {"S": "Bob"},
        ":alice": {"S": "Alice"}, ":lic": {"S": "lic"}, ":red": {"S": "red"}, ":green": {"S": "green"}, ":b12": {"B": "AQI="},
        ":b23": {"B": "AgM="}, ":b1": {"B": "AQ=="}, ":y": {"S": "y"}, ":mx": {"M": {"x": {"S": "y"}}}, ":a": {"S": "a"},
        ":tN": {"S": "N"}, ":tSS": {"S": "SS"}, ":tM": {"S": "M"}, ":tS": {"S": "S"}, ":true": {"BOOL": true}, ":false": {"BOOL": false},
        ":null": {"NULL": true}, ":empty": {"S": ""}, ":tags": {"SS": ["blue", "red"]}, ":list": {"L": [{"S": "a"}, {"N": "1.0"}, {"M": {"x": {"S": "y"}}}]},
        ":inner": {"M": {"v": {"N": "5"}}}, ":zero": {"N": "0"}
    }));
    Placeholders::new(Some(names), Some(values)).expect("valid placeholders")
}

#[test]
fn conditions_evaluate_as_dynamodb_does() {
    let item = sample();
    let cases: &[(&str, bool)] = &[
        ("age = :n30", true),
        ("age = :n30x", true),
        ("age = :s30", false),
        ("age <> :n30", false),
        ("age <> :s30", true),
        ("absent <> :n30", true),
        ("absent = :n30", false),
        ("age < :s30", false),
        ("age > :s30", false),
        ("#n < :bob", true),
        ("#n > :bob", false),
        ("#n >= :alice", true),
        ("#n <= :alice", true),
        ("age >= :n30", true),
        ("age > :n30", false),
        ("age > :neg", true),
        ("score = :n15", true),
        ("score > :n1", true),
        ("score < :n2", true),
        ("bin < :b23", true),
        ("bin > :b12", true),
        ("age BETWEEN :n1 AND :n100", true),
        ("age BETWEEN :n30 AND :n30", true),
        ("age BETWEEN :n1 AND :n5", false),
        ("#n BETWEEN :al AND :bob", true),
        ("absent BETWEEN :n1 AND :n100", false),
        ("age BETWEEN :al AND :bob", false),
        ("age IN (:n1, :n30)", true),
        ("age IN (:n1, :n2)", false),
        ("age IN (:s30)", false),
        ("absent IN (:n1)", false),
        ("tags IN (:tags)", true),
        ("attribute_exists(mp.inn.v)", true),
        ("attribute_exists(mp.inn.w)", false),
        ("attribute_exists(lst[2].x)", true),
        ("attribute_exists(lst[3])", false),
        ("attribute_exists(age.x)", false),
        ("attribute_exists(nothing)", true),
        ("attribute_not_exists(absent)", true),
        ("attribute_not_exists(age)", false),
        ("attribute_exists(#dot)", false),
        ("attribute_type(age, :tN)", true),
        ("attribute_type(tags, :tSS)", true),
        ("attribute_type(mp, :tM)", true),
        ("attribute_type(age, :tS)", false),
        ("attribute_type(absent, :tS)", false),
        ("begins_with(#n, :al)", true),
        ("begins_with(#n, :bob)", false),
        ("begins_with(bin, :b12)", true),
        ("begins_with(bin, :b23)", false),
        ("begins_with(age, :al)", false),
        ("begins_with(tags, :red)", false),
        ("contains(tags, :red)", true),
        ("contains(tags, :green)", false),
        ("contains(#n, :lic)", true),
        ("contains(#n, :bob)", false),
        ("contains(lst, :n1)", true),
        ("contains(lst, :a)", true),
        ("contains(lst, :mx)", true),
        ("contains(lst, :y)", false),
        ("contains(nums, :n2)", true),
        ("contains(nums, :n3)", false),
        ("contains(bins, :b1)", true),
        ("contains(bin, :b23)", true),
        ("contains(age, :n30)", false),
        ("contains(absent, :a)", false),
        ("contains(mp.s, #n)", false),
        ("size(tags) = :n2", true),
        ("size(#n) = :n5", true),
        ("size(unicode) = :n2", true),
        ("size(blank) = :zero", true),
        ("size(lst) > :n2", true),
        ("size(mp) = :n2", true),
        ("size(bin) = :n3", true),
        ("size(age) = :n2", false),
        ("size(absent) = :n1", false),
        ("size(absent) <> :n1", true),
        ("lst[2].x = :y", true),
        ("lst[5] = :n1", false),
        ("mp.inn = :inner", true),
        ("lst = :list", true),
        ("tags = :tags", true),
        ("nothing = :null", true),
        ("flag = :true", true),
        ("flag = :false", false),
        ("flag < :true", false),
        ("blank = :empty", true),
        ("NOT age = :n30", false),
        ("NOT (age = :n30)", false),
        ("NOT age = :n1 AND age = :n30", true),
        ("age = :n1 AND age = :n30 OR flag = :true", true),
        ("age = :n1 AND (age = :n30 OR flag = :true)", false),
        ("flag = :true OR age = :n1 AND age = :n30", true),
        ("(flag = :true OR age = :n1) AND age = :n1", false),
        ("NOT (flag = :true OR age = :n1)", false),
        ("(age) = :n30", true),
        ("(size(tags)) = :n2", true),
        (":n1 < :n2", true),
        (":n30 = age", true),
        (":n1 < age", true),
    ];
    for (text, expected) in cases {
        let mut placeholders = eval_placeholders();
        let condition = Condition::parse(text, ExpressionKind::Condition, &mut placeholders).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(condition.evaluate(&item), *expected, "{text}");
    }
    // Against no item at all, only the negative conditions hold.
    let mut placeholders = eval_placeholders();
    let none = Item::new();
    for (text, expected) in [("attribute_not_exists(pk)", true), ("attribute_exists(pk)", false), ("pk <> :a", true), ("pk = :a", false)] {
        let condition = Condition::parse(text, ExpressionKind::Condition, &mut placeholders).expect("parses");
        assert_eq!(condition.evaluate(&none), expected, "{text}");
    }
}

#[test]
fn placeholders_are_checked_and_unused_ones_refused() {
    let name_map =
        |pairs: &[(&str, &str)]| -> BTreeMap<String, String> { pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    type Case<'a> = (Option<BTreeMap<String, String>>, Option<Value>, &'a str);
    let cases: Vec<Case> = vec![
        (Some(BTreeMap::new()), None, "ExpressionAttributeNames must not be empty"),
        (None, Some(json!({})), "ExpressionAttributeValues must not be empty"),
        (Some(name_map(&[("a", "b")])), None, r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "a""#),
        (Some(name_map(&[("#a-b", "b")])), None, r##"ExpressionAttributeNames contains invalid key: Syntax error; key: "#a-b""##),
        (None, Some(json!({"b": {"S": "x"}})), r#"ExpressionAttributeValues contains invalid key: Syntax error; key: "b""#),
        (None, Some(json!({":": {"S": "x"}})), r#"ExpressionAttributeValues contains invalid key: Syntax error; key: ":""#),
        (None, Some(json!({":a": {"SS": []}})), "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An string set  may not be empty for key :a"),
        (None, Some(json!({":a": {}})), "ExpressionAttributeValues contains invalid value: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes for key :a"),
        (None, Some(json!({":a": {"N": "x"}})), "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: x for key :a"),
    ];
    for (names, values, expected) in cases {
        let values = values.map(|v| serde_json::from_value(v).expect("wire values"));
        let error = Placeholders::from_wire(names, values).expect_err(expected);
        assert_eq!(error.to_string(), expected);
    }

    // Unused: names first, then values; all unused keys listed.
    let names = name_map(&[("#a", "a"), ("#b", "b"), ("#c", "c")]);
    let vals = values(json!({":x": {"S": "1"}, ":y": {"S": "2"}, ":z": {"S": "3"}}));
    let mut p = Placeholders::new(Some(names.clone()), Some(vals.clone())).expect("valid");
    Condition::parse("#a = :x", ExpressionKind::Condition, &mut p).expect("parses");
    assert_eq!(
        p.check_unused().expect_err("unused").to_string(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b, #c}"
    );
    Projection::parse("#b, #c", &mut p).expect("parses");
    assert_eq!(
        p.check_unused().expect_err("unused").to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:y, :z}"
    );
    Update::parse("SET a = :y, b = :z", &mut p).expect("parses");
    p.check_unused().expect("all used");
    let mut p = Placeholders::new(None, Some(values(json!({":x": {"S": "1"}})))).expect("valid");
    assert_eq!(
        p.check_unused().expect_err("unused").to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"
    );
    // A failed parse marks nothing.
    Condition::parse("a = :x AND", ExpressionKind::Condition, &mut p).expect_err("a syntax error");
    p.check_unused().expect_err(":x is still unused");
}

fn update_error(text: &str) -> String {
    match Update::parse(text, &mut standard()) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn update_parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "The expression can not be empty;"),
        ("INVALID SYNTAX HERE", r#"Syntax error; token: "INVALID", near: "INVALID SYNTAX""#),
        ("ADD hits : incr", r#"Syntax error; token: ":", near: "hits : incr""#),
        ("SET a = :s, b = :n,", r#"Syntax error; token: "<EOF>", near: ",""#),
        ("SET #a = :s, #, b = :n", r##"Syntax error; token: "#", near: ", #,""##),
        ("SET a = :s b = :n", r#"Syntax error; token: "b", near: ":s b =""#),
        ("SET a :s", r#"Syntax error; token: ":s", near: "a :s""#),
        ("SET", r#"Syntax error; token: "<EOF>", near: "SET""#),
        ("SET a = ", r#"Syntax error; token: "<EOF>", near: "=""#),
        ("SET a = :s +", r#"Syntax error; token: "<EOF>", near: "+""#),
        ("SET a = :s + :n + :m", r#"Syntax error; token: "+", near: ":n + :m""#),
        ("SET a = 1", r#"Syntax error; token: "1", near: "= 1""#),
        ("REMOVE a = :s", r#"Syntax error; token: "=", near: "a = :s""#),
        ("ADD a", r#"Syntax error; token: "<EOF>", near: "a""#),
        ("ADD a b", r#"Syntax error; token: "b", near: "a b""#),
        ("DELETE a", r#"Syntax error; token: "<EOF>", near: "a""#),
        ("SET a = if_not_exists(a, :s", r#"Syntax error; token: "<EOF>", near: ":s""#),
        ("SET a-b = :s", r#"Syntax error; token: "-", near: "a-b""#),
        ("SET #AMZN_MAPPED-x = :s", r##"Syntax error; token: "-", near: "#AMZN_MAPPED-x""##),
        ("UPDATE a = :s", r#"Syntax error; token: "UPDATE", near: "UPDATE a""#),
        ("SET a = :s REMOVE", r#"Syntax error; token: "<EOF>", near: "REMOVE""#),
        ("SET a = :s, REMOVE b", r#"Syntax error; token: "REMOVE", near: ", REMOVE b""#),
        ("SET a[x] = :s", r#"Syntax error; token: "x", near: "[x]""#),
        ("SET a = (:s", r#"Syntax error; token: "<EOF>", near: ":s""#),
    ];
    for (text, reason) in cases {
        assert_eq!(update_error(text), format!("Invalid UpdateExpression: {reason}"), "{text}");
    }
}

#[test]
fn update_semantic_errors_in_dynamodb_order() {
    let cases: &[(&str, &str)] = &[
        ("SET status = :s", "Attribute name is a reserved keyword; reserved keyword: status"),
        ("SET a = foo(:s), status = :s", "Attribute name is a reserved keyword; reserved keyword: status"),
        ("SET a = foo(:s)", "Invalid function name; function: foo"),
        ("SET a = size(b)", "Invalid function name; function: size"),
        ("SET a = foo(:s) SET b = :s", "Invalid function name; function: foo"),
        ("SET a = :s SET b = :s", r#"The "SET" section can only be used once in an update expression;"#),
        ("REMOVE a REMOVE b", r#"The "REMOVE" section can only be used once in an update expression;"#),
        ("ADD a :n ADD b :n", r#"The "ADD" section can only be used once in an update expression;"#),
        ("DELETE a :ss DELETE b :ss", r#"The "DELETE" section can only be used once in an update expression;"#),
        ("SET a = :s REMOVE b SET c = :s", r#"The "SET" section can only be used once in an update expression;"#),
        ("SET #x = :s", "An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("SET a = :nope", "An expression attribute value used in expression is not defined; attribute value: :nope"),
        ("SET a = :nope, #x = :s", "An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("SET a = :s, a = :n", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("SET a = :s REMOVE a.b", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        ("REMOVE a.b[1].c, a.b", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b, [1], c], path two: [a, b]"),
        ("SET #a = :s REMOVE a", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("SET a.b = :s REMOVE a[1]", "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]"),
        ("SET a.b = :s, a[1] = :s, a = :s", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"),
        ("ADD a :s", "Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
        ("ADD a :l", "Incorrect operand type for operator or function; operator: ADD, operand type: LIST"),
        ("ADD a :map", "Incorrect operand type for operator or function; operator: ADD, operand type: MAP"),
        ("ADD a :t", "Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN"),
        ("ADD a :null", "Incorrect operand type for operator or function; operator: ADD, operand type: NULL"),
        ("ADD a :b", "Incorrect operand type for operator or function; operator: ADD, operand type: BINARY"),
        ("DELETE a :n", "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"),
        ("DELETE a :s", "Incorrect operand type for operator or function; operator: DELETE, operand type: STRING"),
        ("SET a = :s + :n", "Incorrect operand type for operator or function; operator or function: +, operand type: S"),
        ("SET a = b - :ss", "Incorrect operand type for operator or function; operator or function: -, operand type: SS"),
        ("SET a = list_append(a, :s)", "Incorrect operand type for operator or function; operator or function: list_append, operand type: S"),
        ("SET a = list_append(:l)", "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1"),
        ("SET a = if_not_exists(a)", "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1"),
        ("SET a = if_not_exists(:s, a)", "Operator or function requires a document path; operator or function: if_not_exists"),
        ("ADD a :s SET b = list_append(:s, :l)", "Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
    ];
    for (text, reason) in cases {
        assert_eq!(update_error(text), format!("Invalid UpdateExpression: {reason}"), "{text}");
    }
    let valid = [
        "SET a = :s",
        "set a = :s, b = :n remove c, d add e :n, f :ss delete g :ss",
        "REMOVE a[1], a[2]",
        "SET a = b + :n",
        "SET a = :n - b",
        "SET a = (b + :n)",
        "SET a = (b) + (:n)",
        "SET a = if_not_exists(a, :n) + :m",
        "SET a = list_append(if_not_exists(a, :l), :l)",
        "SET a = list_append(:l, a)",
        "SET #n = :s",
        "SET a.b[2].c = :s, a.b[3] = :s",
        "SET a[0] = :s, a[1] = :s",
        "DELETE a :ns ADD b :bs",
        "ADD a :n",
        "SET #dot = :s",
        "SET a = b",
    ];
    for text in valid {
        assert_eq!(update_error(text), "ok", "{text}");
    }
}

/// Applies `text` with `vals` to `before`; the item after, or the error's text.
fn run_update(before: Value, text: &str, vals: Value) -> Result<Item, String> {
    let mut placeholders = Placeholders::new(None, Some(values(vals))).expect("valid values");
    let update = Update::parse(text, &mut placeholders).map_err(|e| e.to_string())?;
    let mut it = item(before);
    let original = it.clone();
    match update.apply(&mut it) {
        Ok(()) => Ok(it),
        Err(e) => {
            assert_eq!(it, original, "{text}: a failed update leaves the item alone");
            Err(e.to_string())
        }
    }
}

#[test]
fn updates_change_items_as_dynamodb_does() {
    let v = json!({
        ":s": {"S": "x"}, ":n": {"N": "1"}, ":n5": {"N": "5.5"}, ":l": {"L": [{"S": "z"}]}, ":ss": {"SS": ["a", "c"]},
        ":ns": {"NS": ["1", "3"]}, ":bs": {"BS": ["AQ=="]}, ":big": {"N": "9E+125"}, ":tiny": {"N": "1"}, ":e50": {"N": "1E+50"},
        ":m": {"M": {"k": {"S": "v"}}}
    });
    let cases: Vec<(Value, &str, Value)> = vec![
        (json!({"pk": {"S": "p"}}), "SET a = :s", json!({"pk": {"S": "p"}, "a": {"S": "x"}})),
        (json!({"a": {"S": "old"}}), "SET a = :s", json!({"a": {"S": "x"}})),
        (json!({"a": {"N": "10"}}), "SET a = a + :n", json!({"a": {"N": "11"}})),
        (json!({"a": {"N": "10"}}), "SET a = a - :n5", json!({"a": {"N": "4.5"}})),
        (json!({"a": {"N": "10"}}), "SET b = :n - a", json!({"a": {"N": "10"}, "b": {"N": "-9"}})),
        (json!({"a": {"N": "0.1"}}), "SET a = a + a", json!({"a": {"N": "0.2"}})),
        (json!({"a": {"N": "10000000000000000000000"}}), "SET a = a + :n", json!({"a": {"N": "10000000000000000000001"}})),
        (json!({}), "SET a = if_not_exists(a, :n)", json!({"a": {"N": "1"}})),
        (json!({"a": {"N": "7"}}), "SET a = if_not_exists(a, :n)", json!({"a": {"N": "7"}})),
        (json!({}), "SET a = if_not_exists(a, :n) + :n", json!({"a": {"N": "2"}})),
        (json!({"a": {"L": [{"S": "y"}]}}), "SET a = list_append(a, :l)", json!({"a": {"L": [{"S": "y"}, {"S": "z"}]}})),
        (json!({"a": {"L": [{"S": "y"}]}}), "SET a = list_append(:l, a)", json!({"a": {"L": [{"S": "z"}, {"S": "y"}]}})),
        (json!({}), "SET a = list_append(if_not_exists(a, :l), :l)", json!({"a": {"L": [{"S": "z"}, {"S": "z"}]}})),
        (json!({"a": {"N": "1"}}), "SET b = a, a = :s", json!({"a": {"S": "x"}, "b": {"N": "1"}})),
        (json!({"m": {"M": {}}}), "SET m.k = :s", json!({"m": {"M": {"k": {"S": "x"}}}})),
        (json!({"m": {"M": {"n": {"M": {}}}}}), "SET m.n.k = :s", json!({"m": {"M": {"n": {"M": {"k": {"S": "x"}}}}}})),
        (json!({"l": {"L": [{"S": "a"}, {"S": "b"}]}}), "SET l[1] = :s", json!({"l": {"L": [{"S": "a"}, {"S": "x"}]}})),
        (json!({"l": {"L": [{"S": "a"}]}}), "SET l[7] = :s", json!({"l": {"L": [{"S": "a"}, {"S": "x"}]}})),
        (json!({"l": {"L": [{"M": {}}]}}), "SET l[0].k = :m", json!({"l": {"L": [{"M": {"k": {"M": {"k": {"S": "v"}}}}}]}})),
        (json!({"a": {"S": "x"}, "b": {"S": "y"}}), "REMOVE a", json!({"b": {"S": "y"}})),
        (json!({"a": {"S": "x"}}), "REMOVE absent", json!({"a": {"S": "x"}})),
        (
            json!({"l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}, {"S": "d"}]}}),
            "REMOVE l[1]",
            json!({"l": {"L": [{"S": "a"}, {"S": "c"}, {"S": "d"}]}}),
        ),
        (
            json!({"l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}, {"S": "d"}]}}),
            "REMOVE l[1], l[2]",
            json!({"l": {"L": [{"S": "a"}, {"S": "d"}]}}),
        ),
        (
            json!({"l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]}}),
            "REMOVE l[0] SET l[1] = :s",
            json!({"l": {"L": [{"S": "x"}, {"S": "c"}]}}),
        ),
        (json!({"l": {"L": [{"S": "a"}]}}), "REMOVE l[5]", json!({"l": {"L": [{"S": "a"}]}})),
        (json!({"m": {"M": {"k": {"S": "v"}, "j": {"S": "w"}}}}), "REMOVE m.k", json!({"m": {"M": {"j": {"S": "w"}}}})),
        (json!({}), "ADD a :n", json!({"a": {"N": "1"}})),
        (json!({"a": {"N": "1.5"}}), "ADD a :n5", json!({"a": {"N": "7"}})),
        (json!({}), "ADD s :ss", json!({"s": {"SS": ["a", "c"]}})),
        (json!({"s": {"SS": ["a", "b"]}}), "ADD s :ss", json!({"s": {"SS": ["a", "b", "c"]}})),
        (json!({"s": {"NS": ["2"]}}), "ADD s :ns", json!({"s": {"NS": ["1", "2", "3"]}})),
        (json!({"s": {"BS": ["Ag=="]}}), "ADD s :bs", json!({"s": {"BS": ["AQ==", "Ag=="]}})),
        (json!({"m": {"M": {}}}), "ADD m.c :n", json!({"m": {"M": {"c": {"N": "1"}}}})),
        (json!({"s": {"SS": ["a", "b", "c"]}}), "DELETE s :ss", json!({"s": {"SS": ["b"]}})),
        (json!({"s": {"SS": ["a", "c"]}}), "DELETE s :ss", json!({})),
        (json!({"s": {"NS": ["1", "2"]}}), "DELETE s :ns", json!({"s": {"NS": ["2"]}})),
        (json!({}), "DELETE s :ss", json!({})),
        (
            json!({"a": {"N": "1"}, "s": {"SS": ["a"]}}),
            "SET b = :s REMOVE a ADD c :n DELETE s :ss",
            json!({"b": {"S": "x"}, "c": {"N": "1"}}),
        ),
    ];
    for (before, text, after) in cases {
        assert_eq!(run_update(before, text, v.clone()), Ok(item(after)), "{text}");
    }
    let errors: Vec<(Value, &str, &str)> = vec![
        (json!({}), "SET a = b", "The provided expression refers to an attribute that does not exist in the item"),
        (json!({}), "SET a = b + :n", "The provided expression refers to an attribute that does not exist in the item"),
        (json!({}), "SET a = list_append(b, :l)", "The provided expression refers to an attribute that does not exist in the item"),
        (json!({"a": {"S": "x"}}), "SET a = a + :n", "An operand in the update expression has an incorrect data type"),
        (json!({"a": {"S": "x"}}), "SET b = :n - a", "An operand in the update expression has an incorrect data type"),
        (json!({"a": {"S": "x"}}), "SET a = list_append(a, :l)", "An operand in the update expression has an incorrect data type"),
        (json!({"a": {"S": "x"}}), "ADD a :n", "An operand in the update expression has an incorrect data type"),
        (json!({"a": {"SS": ["x"]}}), "ADD a :ns", "An operand in the update expression has an incorrect data type"),
        (json!({"a": {"N": "1"}}), "DELETE a :ss", "An operand in the update expression has an incorrect data type"),
        (json!({}), "SET m.k = :s", "The document path provided in the update expression is invalid for update"),
        (json!({"m": {"S": "x"}}), "SET m.k = :s", "The document path provided in the update expression is invalid for update"),
        (json!({"m": {"M": {}}}), "SET m[0] = :s", "The document path provided in the update expression is invalid for update"),
        (json!({"l": {"L": []}}), "SET l.k = :s", "The document path provided in the update expression is invalid for update"),
        (json!({}), "REMOVE m.k", "The document path provided in the update expression is invalid for update"),
        (json!({}), "ADD m.k :n", "The document path provided in the update expression is invalid for update"),
        (json!({"a": {"N": "1"}}), "SET b = :s, m.k = :s", "The document path provided in the update expression is invalid for update"),
        (json!({}), "SET a = :big + :big", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        (json!({}), "SET a = :e50 + :tiny", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        (json!({}), "SET a = :e50 - :tiny", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        (
            json!({"a": {"N": "9E+125"}}),
            "ADD a :big",
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ];
    for (before, text, expected) in errors {
        assert_eq!(run_update(before, text, v.clone()), Err(expected.to_string()), "{text}");
    }
}

#[test]
fn updates_name_the_key_attributes_they_touch() {
    let mut p = standard();
    let update = Update::parse("SET a = :s REMOVE #k", &mut p).expect("parses");
    assert_eq!(update.paths().iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["[a]", "[pk]"]);
    assert_eq!(
        update.check_key_attributes(&["pk", "sk"]).expect_err("pk is a key").to_string(),
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    );
    update.check_key_attributes(&["id"]).expect("no key touched");
}

fn projection(text: &str) -> Result<Projection, String> {
    Projection::parse(text, &mut standard()).map_err(|e| e.to_string())
}

#[test]
fn projection_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "The expression can not be empty;"),
        ("a,", r#"Syntax error; token: "<EOF>", near: ",""#),
        ("a b", r#"Syntax error; token: "b", near: "a b""#),
        ("!!! INVALID !!!", r#"Syntax error; token: "!", near: "!!""#),
        ("a, :s", r#"Syntax error; token: ":s", near: ", :s""#),
        ("a[", r#"Syntax error; token: "<EOF>", near: "[""#),
        ("status", "Attribute name is a reserved keyword; reserved keyword: status"),
        ("a, #undef", "An expression attribute name used in the document path is not defined; attribute name: #undef"),
        (
            "a, a.b",
            "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
        ),
        ("a, #a", "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        (
            "a.b, a[0]",
            "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(projection(text).map(|_| ()), Err(format!("Invalid ProjectionExpression: {reason}")), "{text}");
    }
}

#[test]
fn projections_select_as_dynamodb_does() {
    let it = item(json!({
        "a": {"L": [{"S": "zero"}, {"M": {"x": {"N": "1"}, "y": {"N": "2"}, "z": {"N": "3"}}}, {"S": "two"}, {"S": "three"}]},
        "m": {"M": {"p": {"S": "q"}, "r": {"M": {"s": {"S": "t"}}}}}, "n": {"N": "1"}, "name": {"S": "x"}
    }));
    let cases: Vec<(&str, Value)> = vec![
        ("n", json!({"n": {"N": "1"}})),
        ("n, #n", json!({"n": {"N": "1"}, "name": {"S": "x"}})),
        ("a[1]", json!({"a": {"L": [{"M": {"x": {"N": "1"}, "y": {"N": "2"}, "z": {"N": "3"}}}]}})),
        ("a[3], a[0]", json!({"a": {"L": [{"S": "zero"}, {"S": "three"}]}})),
        ("a[1].x, a[1].z", json!({"a": {"L": [{"M": {"x": {"N": "1"}, "z": {"N": "3"}}}]}})),
        ("a[9]", json!({})),
        ("a[1].w", json!({})),
        ("m.r.s", json!({"m": {"M": {"r": {"M": {"s": {"S": "t"}}}}}})),
        ("m.p, m.absent", json!({"m": {"M": {"p": {"S": "q"}}}})),
        ("m.p.deeper", json!({})),
        ("absent, n", json!({"n": {"N": "1"}})),
        ("n[0]", json!({})),
    ];
    for (text, expected) in cases {
        let p = projection(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.apply(&it), item(expected), "{text}");
    }
}

fn key(text: &str, vals: Value) -> Result<KeyCondition, String> {
    let mut p = Placeholders::new(None, Some(values(vals))).expect("valid values");
    KeyCondition::parse(text, &mut p).map_err(|e| e.to_string())
}

#[test]
fn key_condition_shapes_dynamodb_refuses() {
    // Texts and cases: dynalite `test/query.js`.
    let one = json!({":a": {"N": "1"}, ":b": {"N": "1"}, ":s": {"S": "S"}});
    let cases: &[(&str, &str)] = &[
        ("", "Invalid KeyConditionExpression: The expression can not be empty;"),
        ("a = ", r#"Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "=""#),
        ("attribute_type(a, :s)", "Invalid operator used in KeyConditionExpression: attribute_type"),
        ("a > b and size(b) > c or a > c", "Invalid operator used in KeyConditionExpression: OR"),
        ("a in (b, size(c), d)", "Invalid operator used in KeyConditionExpression: IN"),
        ("attribute_exists(a)", "Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("attribute_not_exists(a)", "Invalid operator used in KeyConditionExpression: attribute_not_exists"),
        ("contains(a.d, b)", "Invalid operator used in KeyConditionExpression: contains"),
        ("not a > b", "Invalid operator used in KeyConditionExpression: NOT"),
        ("a <> b", "Invalid operator used in KeyConditionExpression: <>"),
        (":a between size(b) and size(a) and b > :b", "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"),
        ("begins_with(:s, b) and a > :b", "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"),
        ("size(b) > a AND a.b > b AND b > c", "KeyConditionExpressions cannot contain nested operations"),
        ("a > size(b.d)", "KeyConditionExpressions cannot contain nested operations"),
        ("a between size(b) and size(a)", "KeyConditionExpressions cannot contain nested operations"),
        ("b > a.b", "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
        ("b between c[1] and d", "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
        ("begins_with(a, b)", "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
        ("b.d > a AND c.d > e.f", "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("a.d > c", "KeyConditionExpressions cannot have conditions on nested attributes"),
        ("b[0] > a", "KeyConditionExpressions cannot have conditions on nested attributes"),
        (":b > :a AND a < :b", "Invalid condition in KeyConditionExpression: No key attribute specified"),
        ("b > :a AND b < :a and c = :a and d = :a", "KeyConditionExpressions must only contain one condition per key"),
        ("(a > :a and b > :a) and (b > :a and c > :a)", "KeyConditionExpressions must only contain one condition per key"),
        ("a = :a and b = :a and c = :a", "Conditions can be of length 1 or 2 only"),
        ("a BETWEEN :b AND :s", "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:S}"),
        ("begins_with(a, :a)", "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
    ];
    for (text, expected) in cases {
        assert_eq!(key(text, one.clone()).map(|_| ()), Err(expected.to_string()), "{text}");
    }
}

#[test]
fn key_conditions_resolve_to_a_partition_and_a_sort_range() {
    let v = json!({":p": {"S": "p1"}, ":a": {"N": "1"}, ":b": {"N": "5"}, ":pre": {"S": "ab"}});
    let n = |t: &str| AttributeValue::n(t);
    let p1 = AttributeValue::s("p1");
    let cases: Vec<(&str, Option<SortCondition>)> = vec![
        ("pk = :p", None),
        ("pk = :p AND sk = :a", Some(SortCondition::Eq(n("1")))),
        ("pk = :p AND sk < :a", Some(SortCondition::Lt(n("1")))),
        ("pk = :p AND sk <= :a", Some(SortCondition::Le(n("1")))),
        ("pk = :p AND sk > :a", Some(SortCondition::Gt(n("1")))),
        ("pk = :p AND sk >= :a", Some(SortCondition::Ge(n("1")))),
        ("pk = :p AND :a < sk", Some(SortCondition::Gt(n("1")))),
        ("pk = :p AND :a >= sk", Some(SortCondition::Le(n("1")))),
        ("sk BETWEEN :a AND :b AND pk = :p", Some(SortCondition::Between(n("1"), n("5")))),
        ("pk = :p AND begins_with(sk, :pre)", Some(SortCondition::BeginsWith(AttributeValue::s("ab")))),
        ("(pk = :p) AND (sk = :a)", Some(SortCondition::Eq(n("1")))),
        (":p = pk", None),
    ];
    for (text, sort) in cases {
        let condition = key(text, v.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(condition.for_schema("pk", Some("sk")), Ok(KeyQuery { partition: p1.clone(), sort }), "{text}");
    }
    let schema_errors: &[(&str, &str, Option<&str>, &str)] = &[
        ("sk = :a", "pk", Some("sk"), "Query condition missed key schema element: pk"),
        ("pk = :p AND x = :a", "pk", Some("sk"), "Query condition missed key schema element: sk"),
        ("pk = :p AND sk = :a", "pk", None, "Query key condition not supported"),
        ("pk > :p", "pk", Some("sk"), "Query key condition not supported"),
        ("begins_with(pk, :pre)", "pk", None, "Query key condition not supported"),
        ("x = :p", "pk", None, "Query condition missed key schema element: pk"),
    ];
    for (text, pk, sk, expected) in schema_errors {
        let condition = key(text, v.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(condition.for_schema(pk, *sk).map(|_| ()).map_err(|e| e.to_string()), Err(expected.to_string()), "{text}");
    }
    let query = key("pk = :p AND sk > :a", v.clone()).expect("parses").for_schema("pk", Some("sk")).expect("resolves");
    query.check_types(crate::ValueType::S, Some(crate::ValueType::N)).expect("types match");
    assert_eq!(
        query.check_types(crate::ValueType::N, Some(crate::ValueType::N)).expect_err("pk is S").to_string(),
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
    let matching: &[(SortCondition, &str, bool)] = &[
        (SortCondition::Between(n("1"), n("5")), "5", true),
        (SortCondition::Between(n("1"), n("5")), "5.01", false),
        (SortCondition::Lt(n("1")), "0.999", true),
        (SortCondition::Ge(n("1")), "1.0", true),
        (SortCondition::Gt(n("-1")), "-2", false),
    ];
    for (condition, value, expected) in matching {
        assert_eq!(condition.matches(&n(value)), *expected, "{condition:?} {value}");
    }
    assert!(SortCondition::BeginsWith(AttributeValue::s("ab")).matches(&AttributeValue::s("abc")));
    assert!(!SortCondition::BeginsWith(AttributeValue::s("ab")).matches(&AttributeValue::s("a")));
    assert!(!SortCondition::Lt(AttributeValue::s("b")).matches(&n("1")));
}
