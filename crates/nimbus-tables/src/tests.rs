//! Tables for the value model: numbers (parsing, range, canonical text, order, sums, sizes),
//! values off the wire (DynamoDB's refusals and their texts), item sizes, equality and order.

use std::cmp::Ordering;

use serde_json::json;

use crate::number::{Number, NumberError};
use crate::value::{check_item_size, item_size, AttributeValue, Item, ValueError, WireValue, MAX_ITEM_SIZE};

fn num(text: &str) -> Number {
    Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn numbers_parse_to_their_canonical_text() {
    let cases: &[(&str, &str)] = &[
        ("0", "0"),
        ("-0", "0"),
        ("0.000", "0"),
        ("0e1000", "0"),
        ("1", "1"),
        ("+3", "3"),
        ("0001.23", "1.23"),
        ("1.200", "1.2"),
        (".123", "0.123"),
        ("5.", "5"),
        ("-7.1234", "-7.1234"),
        ("-17e5", "-1700000"),
        ("1e+5", "100000"),
        ("1E2", "100"),
        ("-17.4E37", "-174000000000000000000000000000000000000"),
        ("1.5e-3", "0.0015"),
        ("123.456e1", "1234.56"),
        ("100", "100"),
        ("1E-130", &format!("0.{}1", "0".repeat(129))),
        ("9.9999999999999999999999999999999999999E+125", &format!("99999999999999999999999999999999999999{}", "0".repeat(88))),
        ("3.1415926535897932384626433832795028841", "3.1415926535897932384626433832795028841"),
        ("31415926535897932384626433832795028841e30", &format!("31415926535897932384626433832795028841{}", "0".repeat(30))),
        ("12345678901234567890123456789012345678000", "12345678901234567890123456789012345678000"),
    ];
    for (text, canonical) in cases {
        assert_eq!(num(text).to_string(), *canonical, "{text}");
        assert_eq!(num(canonical), num(text), "{text} round-trips");
    }
}

#[test]
fn numbers_out_of_dynamodb_range_are_refused() {
    let cases: &[(&str, NumberError)] = &[
        ("", NumberError::Empty),
        ("NaN", NumberError::NotNumeric("NaN".into())),
        ("Infinity", NumberError::NotNumeric("Infinity".into())),
        ("-Infinity", NumberError::NotNumeric("-Infinity".into())),
        ("dog", NumberError::NotNumeric("dog".into())),
        (" 1", NumberError::NotNumeric(" 1".into())),
        ("1 ", NumberError::NotNumeric("1 ".into())),
        ("1.2.3", NumberError::NotNumeric("1.2.3".into())),
        ("1e", NumberError::NotNumeric("1e".into())),
        ("e5", NumberError::NotNumeric("e5".into())),
        (".", NumberError::NotNumeric(".".into())),
        ("-", NumberError::NotNumeric("-".into())),
        ("0x10", NumberError::NotNumeric("0x10".into())),
        ("1_000", NumberError::NotNumeric("1_000".into())),
        ("1e126", NumberError::Overflow),
        ("11e125", NumberError::Overflow),
        ("-1e126", NumberError::Overflow),
        ("1e99999999999999999999", NumberError::Overflow),
        ("1e-131", NumberError::Underflow),
        ("0.9e-130", NumberError::Underflow),
        ("-1e-131", NumberError::Underflow),
        ("3.14159265358979323846264338327950288419", NumberError::TooManyDigits),
        ("314159265358979323846.264338327950288419", NumberError::TooManyDigits),
        ("314159265358979323846264338327950288419e30", NumberError::TooManyDigits),
    ];
    for (text, error) in cases {
        assert_eq!(Number::parse(text).as_ref(), Err(error), "{text}");
    }
    let texts: &[(NumberError, &str)] = &[
        (NumberError::Empty, "The parameter cannot be converted to a numeric value"),
        (NumberError::NotNumeric("x".into()), "The parameter cannot be converted to a numeric value: x"),
        (NumberError::Overflow, "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        (NumberError::Underflow, "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        (NumberError::TooManyDigits, "Attempting to store more than 38 significant digits in a Number"),
    ];
    for (error, text) in texts {
        assert_eq!(error.to_string(), *text);
    }
}

#[test]
fn numbers_order_numerically() {
    let ascending = [
        "-9.9999999999999999999999999999999999999E+125",
        "-1E+100",
        "-100",
        "-99.5",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.001",
        "0.5",
        "1",
        "1.0000000000000000000000000000000000001",
        "2",
        "10",
        "99.99",
        "100",
        "1E+38",
        "12345678901234567890123456789012345678E+1",
        "9.9999999999999999999999999999999999999E+125",
    ];
    for (i, a) in ascending.iter().enumerate() {
        for (j, b) in ascending.iter().enumerate() {
            assert_eq!(num(a).cmp(&num(b)), i.cmp(&j), "{a} vs {b}");
        }
    }
    for (a, b) in [("1", "1.0"), ("100", "1E2"), ("0.5", "5e-1"), ("-0", "0"), ("0001", "1.000")] {
        assert_eq!(num(a), num(b), "{a} = {b}");
        assert_eq!(num(a).cmp(&num(b)), Ordering::Equal);
    }
}

#[test]
fn sums_are_exact_or_refused() {
    let cases: &[(&str, &str, Result<&str, NumberError>)] = &[
        ("1", "2", Ok("3")),
        ("0.1", "0.2", Ok("0.3")),
        ("1", "-1", Ok("0")),
        ("-5", "3", Ok("-2")),
        ("3", "-5", Ok("-2")),
        ("1.5", "1.5", Ok("3")),
        ("99999999999999999999999999999999999999", "1", Ok("1E38")),
        ("99999999999999999999999999999999999999", "0.1", Err(NumberError::Overflow)),
        ("9999999999999999999999999999999999999", "1", Ok("10000000000000000000000000000000000000")),
        ("1E+50", "1", Err(NumberError::Overflow)),
        ("1E+50", "1E+50", Ok("200000000000000000000000000000000000000000000000000")),
        ("9E+125", "9E+125", Err(NumberError::Overflow)),
        ("9E+125", "-9E+125", Ok("0")),
        ("1E-130", "1E-130", Ok("2E-130")),
        ("1E-130", "-2E-130", Ok("-1E-130")),
        ("10000000000000000000000", "1", Ok("10000000000000000000001")),
        ("1.0000000000000000000000000000000000001", "-1", Ok("0.0000000000000000000000000000000000001")),
    ];
    for (a, b, expected) in cases {
        let got = num(a).checked_add(&num(b));
        match expected {
            Ok(sum) => assert_eq!(got, Ok(num(sum)), "{a} + {b}"),
            Err(e) => assert_eq!(got.as_ref(), Err(e), "{a} + {b}"),
        }
    }
    assert_eq!(num("10000000000000000000000").checked_sub(&num("1")), Ok(num("9999999999999999999999")));
    assert_eq!(num("1E-130").checked_sub(&num("1E-129")), Ok(num("-9E-130")));
}

#[test]
fn number_sizes_match_dynamodb() {
    // Measured against AWS by dynoxide (PR #195, `test_size_number_matches_dynamodb`).
    let cases: &[(&str, usize)] = &[
        ("1", 2),
        ("12", 2),
        ("123", 3),
        ("1234", 3),
        ("12345", 4),
        ("123456", 4),
        ("1234567", 5),
        ("12345678", 5),
        ("123456789", 6),
        ("1234567891", 6),
        ("12345678912", 7),
        ("123456789123", 7),
        ("1234567890123456789", 11),
        ("12345678901234567890123456789012345678", 20),
        ("0042", 2),
        ("100", 2),
        ("1010", 3),
        ("0.0000001", 2),
        ("0", 1),
        ("1E125", 2),
        ("1E-100", 2),
        ("1.5", 3),
        ("1.2", 3),
        ("1.200", 3),
        ("1.234", 4),
        ("3.14159", 5),
        ("100.5", 4),
        ("0.15", 2),
        ("15", 2),
        ("-42", 3),
        ("-12345", 5),
        ("-1E125", 3),
        ("-0.15", 3),
        ("-0", 1),
    ];
    for (text, size) in cases {
        assert_eq!(num(text).size(), *size, "{text}");
    }
}

fn wire(value: serde_json::Value) -> Result<AttributeValue, String> {
    let wire: WireValue = serde_json::from_value(value).map_err(|e| format!("serde: {e}"))?;
    AttributeValue::try_from(wire).map_err(|e| e.to_string())
}

#[test]
fn values_off_the_wire_are_checked_as_dynamodb_checks_them() {
    let deep = (0..33).fold(json!({"S": "x"}), |inner, _| json!({"L": [inner]}));
    let fine = (0..32).fold(json!({"S": "x"}), |inner, _| json!({"M": {"k": inner}}));
    let cases: Vec<(serde_json::Value, Result<AttributeValue, &str>)> = vec![
        (json!({"S": "x"}), Ok(AttributeValue::s("x"))),
        (json!({"S": ""}), Ok(AttributeValue::s(""))),
        (json!({"N": "1.50"}), Ok(AttributeValue::n("1.5"))),
        (json!({"B": "AQID"}), Ok(AttributeValue::B(vec![1, 2, 3]))),
        (json!({"B": ""}), Ok(AttributeValue::B(vec![]))),
        (json!({"NULL": true}), Ok(AttributeValue::Null)),
        (json!({"BOOL": false}), Ok(AttributeValue::Bool(false))),
        (json!({"SS": ["a", "b"]}), Ok(AttributeValue::SS(vec!["a".into(), "b".into()]))),
        (json!({"NS": ["1", "2.5"]}), Ok(AttributeValue::NS(vec![num("1"), num("2.5")]))),
        (json!({"BS": ["AQ==", "Ag=="]}), Ok(AttributeValue::BS(vec![vec![1], vec![2]]))),
        (json!({"L": []}), Ok(AttributeValue::L(vec![]))),
        (json!({"M": {}}), Ok(AttributeValue::M(Default::default()))),
        (json!({}), Err("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")),
        (
            json!({"S": "a", "N": "1"}),
            Err("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
        ),
        (
            json!({"NULL": true, "BOOL": true}),
            Err("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
        ),
        (json!({"NULL": false}), Err("One or more parameter values were invalid: Null attribute value types must have the value of true")),
        (json!({"SS": []}), Err("One or more parameter values were invalid: An string set  may not be empty")),
        (json!({"NS": []}), Err("One or more parameter values were invalid: An number set  may not be empty")),
        (json!({"BS": []}), Err("One or more parameter values were invalid: Binary sets should not be empty")),
        (json!({"SS": ["a", "b", "a"]}), Err("One or more parameter values were invalid: Input collection [a, b, a] contains duplicates.")),
        (json!({"NS": ["1", "1.0"]}), Err("Input collection contains duplicates")),
        (
            json!({"BS": ["AQ==", "AQ=="]}),
            Err("One or more parameter values were invalid: Input collection [AQ==, AQ==]of type BS contains duplicates."),
        ),
        (json!({"N": "abc"}), Err("The parameter cannot be converted to a numeric value: abc")),
        (json!({"N": ""}), Err("The parameter cannot be converted to a numeric value")),
        (json!({"N": "1e126"}), Err("Number overflow. Attempting to store a number with magnitude larger than supported range")),
        (json!({"NS": ["1", "1e-131"]}), Err("Number underflow. Attempting to store a number with magnitude smaller than supported range")),
        (json!({"N": "1234567890123456789012345678901234567891"}), Err("Attempting to store more than 38 significant digits in a Number")),
        (json!({"M": {"a": {"L": [{"SS": []}]}}}), Err("One or more parameter values were invalid: An string set  may not be empty")),
        (deep, Err("Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit")),
    ];
    for (input, expected) in cases {
        assert_eq!(wire(input.clone()), expected.map_err(str::to_string), "{input}");
    }
    wire(fine).expect("32 levels are allowed");
    // Malformed documents are serde's errors (AWS: SerializationException), not ValidationExceptions.
    for bad in [json!({"N": 1}), json!({"B": "not base64!"}), json!({"SS": "a"}), json!({"BOOL": "true"})] {
        assert!(wire(bad.clone()).is_err_and(|e| e.starts_with("serde: ")), "{bad}");
    }
    assert_eq!(
        ValueError::DuplicateStrings(vec!["x".into()]).to_string(),
        "One or more parameter values were invalid: Input collection [x] contains duplicates."
    );
}

#[test]
fn values_round_trip_through_the_wire_form() {
    let cases = [
        json!({"S": "x"}),
        json!({"N": "-1.5"}),
        json!({"B": "AQID"}),
        json!({"SS": ["b", "a"]}),
        json!({"NS": ["3", "1"]}),
        json!({"BS": ["AQ=="]}),
        json!({"M": {"a": {"L": [{"NULL": true}, {"BOOL": true}, {"M": {}}]}}}),
    ];
    for case in cases {
        let value: AttributeValue = serde_json::from_value(case.clone()).expect("valid");
        assert_eq!(serde_json::to_value(&value).expect("serializes"), case);
    }
    // Numbers come back in DynamoDB's canonical form.
    let value: AttributeValue = serde_json::from_value(json!({"N": "1.50E2"})).expect("valid");
    assert_eq!(serde_json::to_value(&value).expect("serializes"), json!({"N": "150"}));
    // Deserializing an AttributeValue directly carries the AWS text.
    let error = serde_json::from_value::<AttributeValue>(json!({"SS": []})).expect_err("empty set");
    assert_eq!(error.to_string(), "One or more parameter values were invalid: An string set  may not be empty");
}

#[test]
fn equality_and_order_are_dynamodb_s() {
    let v = |j: serde_json::Value| -> AttributeValue { serde_json::from_value(j).expect("valid") };
    let equal = [
        (json!({"N": "1"}), json!({"N": "1.0"})),
        (json!({"SS": ["a", "b"]}), json!({"SS": ["b", "a"]})),
        (json!({"NS": ["1", "2"]}), json!({"NS": ["2.0", "1"]})),
        (json!({"BS": ["AQ==", "Ag=="]}), json!({"BS": ["Ag==", "AQ=="]})),
        (json!({"M": {"a": {"N": "1"}}}), json!({"M": {"a": {"N": "1.00"}}})),
        (json!({"L": [{"S": "a"}]}), json!({"L": [{"S": "a"}]})),
    ];
    for (a, b) in equal {
        assert_eq!(v(a.clone()), v(b.clone()), "{a} = {b}");
    }
    let unequal = [
        (json!({"N": "1"}), json!({"S": "1"})),
        (json!({"SS": ["a"]}), json!({"SS": ["a", "b"]})),
        (json!({"L": [{"S": "a"}, {"S": "b"}]}), json!({"L": [{"S": "b"}, {"S": "a"}]})),
        (json!({"B": "AQ=="}), json!({"S": "AQ=="})),
        (json!({"BOOL": true}), json!({"N": "1"})),
        (json!({"NULL": true}), json!({"BOOL": false})),
    ];
    for (a, b) in unequal {
        assert_ne!(v(a.clone()), v(b.clone()), "{a} <> {b}");
    }
    let ordered: &[(serde_json::Value, serde_json::Value, Option<Ordering>)] = &[
        (json!({"S": "B"}), json!({"S": "a"}), Some(Ordering::Less)),
        (json!({"S": "z"}), json!({"S": "é"}), Some(Ordering::Less)),
        (json!({"S": "ab"}), json!({"S": "abc"}), Some(Ordering::Less)),
        (json!({"S": "\u{ffff}"}), json!({"S": "\u{10000}"}), Some(Ordering::Less)),
        (json!({"B": "fw=="}), json!({"B": "gA=="}), Some(Ordering::Less)),
        (json!({"B": "/w=="}), json!({"B": "AA=="}), Some(Ordering::Greater)),
        (json!({"N": "-10"}), json!({"N": "9"}), Some(Ordering::Less)),
        (json!({"N": "10"}), json!({"N": "9"}), Some(Ordering::Greater)),
        (json!({"N": "1"}), json!({"S": "1"}), None),
        (json!({"BOOL": false}), json!({"BOOL": true}), None),
        (json!({"SS": ["a"]}), json!({"SS": ["b"]}), None),
    ];
    for (a, b, order) in ordered {
        assert_eq!(v(a.clone()).compare(&v(b.clone())), *order, "{a} vs {b}");
    }
}

fn sized(value: serde_json::Value) -> Item {
    serde_json::from_value(value).expect("valid item")
}

#[test]
fn item_sizes_are_counted_as_dynamodb_counts_them() {
    let cases: Vec<(serde_json::Value, usize)> = vec![
        (json!({}), 0),
        // Names and strings by UTF-8 bytes.
        (json!({"a": {"S": "abc"}}), 4),
        (json!({"é": {"S": "ü"}}), 4),
        (json!({"name": {"S": ""}}), 4),
        // Numbers: name + base-100 digits + 1 (+1 if negative).
        (json!({"n": {"N": "123"}}), 4),
        (json!({"n": {"N": "-1.5"}}), 5),
        // Binary by its bytes, not its base64.
        (json!({"b": {"B": "AQID"}}), 4),
        // NULL and BOOL: one byte.
        (json!({"x": {"NULL": true}, "y": {"BOOL": false}}), 4),
        // Sets: the sum of their members.
        (json!({"s": {"SS": ["ab", "c"]}}), 4),
        (json!({"s": {"NS": ["1", "-42"]}}), 6),
        (json!({"s": {"BS": ["AQID", "AQ=="]}}), 5),
        // Documents: 3 bytes, plus 1 per element, plus each element (and a map's keys).
        (json!({"l": {"L": []}}), 4),
        (json!({"m": {"M": {}}}), 4),
        (json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}), 1 + 3 + (1 + 2) + (1 + 2)),
        (json!({"m": {"M": {"k": {"S": "v"}}}}), 1 + 3 + (1 + 1 + 1)),
        (json!({"m": {"M": {"in": {"L": [{"NULL": true}]}}}}), 1 + 3 + (2 + 1 + (3 + 1 + 1))),
        // The developer guide's example attribute sizes: "shirtColor": "R" is 11 bytes;
        // a 29-character name with the number 123 (3 digits: 2 + 1) is 32.
        (json!({"shirtColor": {"S": "R"}}), 11),
        (json!({"thisIsALongAttributeNameX1234": {"N": "123"}}), 32),
    ];
    for (value, size) in cases {
        assert_eq!(item_size(&sized(value.clone())), size, "{value}");
    }
    let exactly = sized(json!({"a": {"S": "x".repeat(MAX_ITEM_SIZE - 1)}}));
    assert_eq!(item_size(&exactly), MAX_ITEM_SIZE);
    check_item_size(&exactly).expect("exactly the limit");
    let over = sized(json!({"ab": {"S": "x".repeat(MAX_ITEM_SIZE - 1)}}));
    assert_eq!(check_item_size(&over).expect_err("one byte over").to_string(), "Item size has exceeded the maximum allowed size");
}
