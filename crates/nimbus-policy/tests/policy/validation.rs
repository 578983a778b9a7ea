//! Validation cases: a document, the kind it is submitted as, and IAM's answer.

use nimbus_policy::{Kind, Policy};

/// Parses `doc` as `kind` and compares the refusal (or `""` for acceptance) with `expected`.
fn check(doc: &str, kind: Kind, expected: &str) {
    let got = match Policy::parse(doc, kind) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected, "{kind:?} document {doc}");
}

/// CreatePolicy (identity policies): the documents and answers of moto's table
/// (`tests/test_iam/test_iam_policies.py`, `invalid_policy_document_test_cases`), which
/// reproduces IAM's answers; carried over unchanged.
const MOTO_INVALID: &[(&str, &str)] = &[
    (r#"This is not a json document"#, r#"Syntax errors in policy."#),
    (
        r#"{"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Policy document must be version 2012-10-17 or greater."#,
    ),
    (
        r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Policy document must be version 2012-10-17 or greater."#,
    ),
    (
        r#"{"Version": "2013-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (r#"{"Version": "2012-10-17"}"#, r#"Syntax errors in policy."#),
    (r#"{"Version": "2012-10-17", "Statement": ["afd"]}"#, r#"Syntax errors in policy."#),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, "Extra field": "value"}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Extra field": "value"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Id": ["cd3a324d2343d942772346-34234234423404-4c2242343242349d1642ee"], "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Id": {}, "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "invalid", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "invalid", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "a a:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Vendor a a is not valid"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:List:Bucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Actions/Condition can contain only one colon."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3s:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, {"Effect": "Allow", "Action": "s:3s:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}]}"#,
        r#"Actions/Condition can contain only one colon."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "invalid resource"}}"#,
        r#"Resource invalid resource must be in ARN format or "*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "EnableDisableHongKong", "Effect": "Allow", "Action": ["account:EnableRegion", "account:DisableRegion"], "Resource": "", "Condition": {"StringEquals": {"account:TargetRegion": "ap-east-1"}}}, {"Sid": "ViewConsole", "Effect": "Allow", "Action": ["aws-portal:ViewAccount", "account:ListRegions"], "Resource": ""}]}"#,
        r#"Resource  must be in ARN format or "*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s:3:ListBucket", "Resource": "sdfsadf"}}"#,
        r#"Resource sdfsadf must be in ARN format or "*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["adf"]}}"#,
        r#"Resource adf must be in ARN format or "*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ""}}"#,
        r#"Resource  must be in ARN format or "*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3s:ListBucket", "Resource": "a:bsdfdsafsad"}}"#,
        r#"Partition "bsdfdsafsad" is not valid for resource "arn:bsdfdsafsad:*:*:*:*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3s:ListBucket", "Resource": "a:b:cadfsdf"}}"#,
        r#"Partition "b" is not valid for resource "arn:b:cadfsdf:*:*:*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3s:ListBucket", "Resource": "a:b:c:d:e:f:g:h"}}"#,
        r#"Partition "b" is not valid for resource "arn:b:c:d:e:f:g:h"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "aws:s3:::example_bucket"}}"#,
        r#"Partition "s3" is not valid for resource "arn:s3:::example_bucket:*"."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:error:s3:::example_bucket", "arn:error:s3::example_bucket"]}}"#,
        r#"Partition "error" is not valid for resource "arn:error:s3:::example_bucket"."#,
    ),
    (r#"{"Version": "2012-10-17", "Statement": []}"#, r#"Syntax errors in policy."#),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket"}}"#,
        r#"Policy statement must contain resources."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": []}}"#,
        r#"Policy statement must contain resources."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "invalid"}}"#,
        r#"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Policy statement must contain actions."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow"}}"#, r#"Policy statement must contain actions."#),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": [], "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Policy statement must contain actions."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny"}, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}]}"#,
        r#"Policy statement must contain actions."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:iam:::example_bucket"}}"#,
        r#"IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "arn:aws:s3::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws"}}"#,
        r#"Resource vendor must be fully qualified and cannot contain regexes."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": {"a": "arn:aws:s3:::example_bucket"}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": ["adfdf", {}]}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "NotResource": []}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": [[]], "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3s:ListBucket", "Action": [], "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": {}, "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": []}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": "a"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"a": "b"}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": "b"}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": []}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": {}}}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": {}}}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"x": {"a": "1"}}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"ForAnyValue::StringEqualsIfExists": {"a": "asf"}}}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": [{"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}}]}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:iam:us-east-1::example_bucket"}}"#,
        r#"IAM resource arn:aws:iam:us-east-1::example_bucket cannot contain region information."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:us-east-1::example_bucket"}}"#,
        r#"Resource arn:aws:s3:us-east-1::example_bucket can not contain region information."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Sid": {}, "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Sid": [], "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "sdf", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, {"Sid": "sdf", "Effect": "Allow"}]}"#,
        r#"Statement IDs (SID) in a single policy must be unique."#,
    ),
    (
        r#"{"Statement": [{"Sid": "sdf", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, {"Sid": "sdf", "Effect": "Allow"}]}"#,
        r#"Policy document must be version 2012-10-17 or greater."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "Action": "iam:dsf", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "NotResource": "*"}}"#,
        r#"Syntax errors in policy."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "denY", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": "sdfdsf"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": "sdfdsf"}}}}"#,
        r#"Policy document must be version 2012-10-17 or greater."#,
    ),
    (
        r#"{"Statement": {"Effect": "denY", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
        r#"Policy document must be version 2012-10-17 or greater."#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Condition": {"DateGreaterThan": {"a": "sdfdsf"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "Resource": "arn:aws::::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "allow", "Resource": "arn:aws:s3:us-east-1::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "sdf", "Effect": "aLLow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, {"Sid": "sdf", "Effect": "Allow"}]}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "NotResource": "arn:aws:s3::example_bucket"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "234-13"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+1"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "2016-12-13t2:00:00.1999999999+10:59"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThan": {"a": "9223372036854775808"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:error:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": "sdfdsf"}}}}"#,
        r#"The policy failed legacy parsing"#,
    ),
    (
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws::fdsasf"}}"#,
        r#"The policy failed legacy parsing"#,
    ),
];

/// The same table's documents that IAM accepts (`valid_policy_documents`).
const MOTO_VALID: &[&str] = &[
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::example_bucket"]}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam: asdf safdsf af ", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::example_bucket", "*"]}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}]}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "service-prefix:action-name", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2017-12-31T23:59:59Z"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "fsx:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:iam:::user/example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s33:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:fdsasf"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:cloudwatch:us-east-1::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:ec2:us-east-1::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:invalid-service:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:invalid-service:us-east-1::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"}, "DateLessThan": {"aws:CurrentTime": "2017-12-31T23:59:59Z"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": []}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"a": {}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Sid": "dsfsdfsdfsdfsdfsadfsd", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "ConsoleDisplay", "Effect": "Allow", "Action": ["iam:GetRole", "iam:GetUser", "iam:ListRoles", "iam:ListRoleTags", "iam:ListUsers", "iam:ListUserTags"], "Resource": "*"}, {"Sid": "AddTag", "Effect": "Allow", "Action": ["iam:TagUser", "iam:TagRole"], "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/CostCenter": ["A-123", "B-456"]}, "ForAllValues:StringEquals": {"aws:TagKeys": "CostCenter"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]}}"#,
    r#"{"Version": "2012-10-17", "Id": "sdfsdfsdf", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "aaaaaadsfdsafsadfsadfaaaaa:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3-s:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3.s:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:ListBucket", "NotResource": "*"}}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "sdf", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket"}]}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateGreaterThan": {"a": "01T"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"x": {}, "y": {}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"StringEqualsIfExists": {"a": "asf"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"ForAnyValue:StringEqualsIfExists": {"a": "asf"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "2019-07-01T13:20:15Z"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "2016-12-13T21:20:37.593194+00:00"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+23"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::example_bucket", "Condition": {"DateLessThan": {"a": "-292275054"}}}}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "AllowViewAccountInfo", "Effect": "Allow", "Action": ["iam:GetAccountPasswordPolicy", "iam:GetAccountSummary", "iam:ListVirtualMFADevices"], "Resource": "*"}, {"Sid": "AllowManageOwnPasswords", "Effect": "Allow", "Action": ["iam:ChangePassword", "iam:GetUser"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnAccessKeys", "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnSigningCertificates", "Effect": "Allow", "Action": ["iam:DeleteSigningCertificate", "iam:ListSigningCertificates", "iam:UpdateSigningCertificate", "iam:UploadSigningCertificate"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnSSHPublicKeys", "Effect": "Allow", "Action": ["iam:DeleteSSHPublicKey", "iam:GetSSHPublicKey", "iam:ListSSHPublicKeys", "iam:UpdateSSHPublicKey", "iam:UploadSSHPublicKey"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnGitCredentials", "Effect": "Allow", "Action": ["iam:CreateServiceSpecificCredential", "iam:DeleteServiceSpecificCredential", "iam:ListServiceSpecificCredentials", "iam:ResetServiceSpecificCredential", "iam:UpdateServiceSpecificCredential"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnVirtualMFADevice", "Effect": "Allow", "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"], "Resource": "arn:aws:iam::*:mfa/${aws:username}"}, {"Sid": "AllowManageOwnUserMFA", "Effect": "Allow", "Action": ["iam:DeactivateMFADevice", "iam:EnableMFADevice", "iam:ListMFADevices", "iam:ResyncMFADevice"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "DenyAllExceptListedIfNoMFA", "Effect": "Deny", "NotAction": ["iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:GetUser", "iam:ListMFADevices", "iam:ListVirtualMFADevices", "iam:ResyncMFADevice", "sts:GetSessionToken"], "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "BooleanConditionOperations_Strings_And_Booleans", "Action": "kms:CreateGrant", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}, "ForAllValues:Bool": {"kms:GrantIsForAWSResource": false}, "ForAnyValue:Bool": {"kms:GrantIsForAWSResource": "True"}}, "Effect": "Allow", "Resource": ["arn:aws:kms:*:123456789012:key/*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "NullConditionOperator_Strings_And_Booleans", "Action": "kms:CreateGrant", "Condition": {"Null": {"kms:EncryptionContextKeys": false, "kms:GrantOperations": "true"}}, "Effect": "Allow", "Resource": ["arn:aws:kms:*:123456789012:key/*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "NullResource", "Action": "kms:CreateGrant", "Effect": "Allow", "Resource": ["arn:aws:kms:*:123456789012:key/*", null]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "ListAndDescribe", "Effect": "Allow", "Action": ["dynamodb:List*", "dynamodb:DescribeReservedCapacity*", "dynamodb:DescribeLimits", "dynamodb:DescribeTimeToLive"], "Resource": "*"}, {"Sid": "SpecificTable", "Effect": "Allow", "Action": ["dynamodb:BatchGet*", "dynamodb:DescribeStream", "dynamodb:DescribeTable", "dynamodb:Get*", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWrite*", "dynamodb:CreateTable", "dynamodb:Delete*", "dynamodb:Update*", "dynamodb:PutItem"], "Resource": "arn:aws:dynamodb:*:*:table/MyTable"}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ec2:AttachVolume", "ec2:DetachVolume"], "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance/*"], "Condition": {"ArnEquals": {"ec2:SourceInstanceARN": "arn:aws:ec2:*:*:instance/instance-id"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ec2:AttachVolume", "ec2:DetachVolume"], "Resource": "arn:aws:ec2:*:*:instance/*", "Condition": {"StringEquals": {"ec2:ResourceTag/Department": "Development"}}}, {"Effect": "Allow", "Action": ["ec2:AttachVolume", "ec2:DetachVolume"], "Resource": "arn:aws:ec2:*:*:volume/*", "Condition": {"StringEquals": {"ec2:ResourceTag/VolumeUser": "${aws:username}"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "StartStopIfTags", "Effect": "Allow", "Action": ["ec2:StartInstances", "ec2:StopInstances", "ec2:DescribeTags"], "Resource": "arn:aws:ec2:region:account-id:instance/*", "Condition": {"StringEquals": {"ec2:ResourceTag/Project": "DataAnalytics", "aws:PrincipalTag/Department": "Data"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "ListYourObjects", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::bucket-name"], "Condition": {"StringLike": {"s3:prefix": ["cognito/application-name/${cognito-identity.amazonaws.com:sub}"]}}}, {"Sid": "ReadWriteDeleteYourObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": ["arn:aws:s3:::bucket-name/cognito/application-name/${cognito-identity.amazonaws.com:sub}", "arn:aws:s3:::bucket-name/cognito/application-name/${cognito-identity.amazonaws.com:sub}/*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "Resource": "*"}, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bucket-name", "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:userid}/*"]}}}, {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::bucket-name/home/${aws:userid}", "arn:aws:s3:::bucket-name/home/${aws:userid}/*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "ConsoleAccess", "Effect": "Allow", "Action": ["s3:GetAccountPublicAccessBlock", "s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketPolicyStatus", "s3:GetBucketPublicAccessBlock", "s3:ListAllMyBuckets"], "Resource": "*"}, {"Sid": "ListObjectsInBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::bucket-name"]}, {"Sid": "AllObjectActions", "Effect": "Allow", "Action": "s3:*Object", "Resource": ["arn:aws:s3:::bucket-name/*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "AllowViewAccountInfo", "Effect": "Allow", "Action": ["iam:GetAccountPasswordPolicy", "iam:GetAccountSummary"], "Resource": "*"}, {"Sid": "AllowManageOwnPasswords", "Effect": "Allow", "Action": ["iam:ChangePassword", "iam:GetUser"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnAccessKeys", "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnSigningCertificates", "Effect": "Allow", "Action": ["iam:DeleteSigningCertificate", "iam:ListSigningCertificates", "iam:UpdateSigningCertificate", "iam:UploadSigningCertificate"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnSSHPublicKeys", "Effect": "Allow", "Action": ["iam:DeleteSSHPublicKey", "iam:GetSSHPublicKey", "iam:ListSSHPublicKeys", "iam:UpdateSSHPublicKey", "iam:UploadSSHPublicKey"], "Resource": "arn:aws:iam::*:user/${aws:username}"}, {"Sid": "AllowManageOwnGitCredentials", "Effect": "Allow", "Action": ["iam:CreateServiceSpecificCredential", "iam:DeleteServiceSpecificCredential", "iam:ListServiceSpecificCredentials", "iam:ResetServiceSpecificCredential", "iam:UpdateServiceSpecificCredential"], "Resource": "arn:aws:iam::*:user/${aws:username}"}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Action": "ec2:*", "Resource": "*", "Effect": "Allow", "Condition": {"StringEquals": {"ec2:Region": "region"}}}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:*", "Resource": ["arn:aws:rds:region:*:*"]}, {"Effect": "Allow", "Action": ["rds:Describe*"], "Resource": ["*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Action": "rds:*", "Resource": ["arn:aws:rds:region:*:*"]}, {"Sid": "", "Effect": "Allow", "Action": ["rds:Describe*"], "Resource": ["*"]}]}"#,
    r#"{"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:us-west-2:123456789012:accesspoint/my-access-point", "arn:aws:s3:us-west-2:123456789012:accesspoint/my-access-point/object/*"]}]}"#,
];

#[test]
fn identity_policies_as_create_policy_answers() {
    for (doc, expected) in MOTO_INVALID {
        check(doc, Kind::Identity, expected);
    }
    for doc in MOTO_VALID {
        check(doc, Kind::Identity, "");
    }
}

const ASSUME_LAMBDA: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;

/// (kind, document, answer). Sources: "recorded" = LocalStack's AWS-validated snapshot;
/// "reported" = IAM's answer quoted in a public bug report; "chosen" = IAM's answer for that
/// exact case is not recorded, the message is the one IAM gives for the same rule elsewhere.
const KIND_CASES: &[(Kind, &str, &str)] = &[
    // recorded: CreateRole with a trailing comma (test_create_role_with_malformed_assume_role_policy_document).
    (
        Kind::Trust,
        r#"{"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole", "Principal": "*", "Effect": "Allow",}]}"#,
        "This policy contains invalid Json",
    ),
    (Kind::Trust, ASSUME_LAMBDA, ""),
    // Trust policies may still say 2008-10-17 (IAM's default version), or nothing.
    (
        Kind::Trust,
        r#"{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}"#,
        "",
    ),
    // reported (hashicorp/terraform#34231): CreateRole with a permissions policy as trust policy.
    (
        Kind::Trust,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": "*"}]}"#,
        "Has prohibited field Resource",
    ),
    // chosen: S3's wording for the same rule (reported for PutBucketPolicy).
    (
        Kind::Trust,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}"#,
        "Missing required field Principal",
    ),
    // reported (configure-aws-credentials#332 and others): the form of IAM's answer.
    (
        Kind::Trust,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::12345678910:role/Orchestration_Role"}, "Action": "sts:AssumeRole"}}"#,
        r#"Invalid principal in policy: "AWS":"arn:aws:iam::12345678910:role/Orchestration_Role""#,
    ),
    // chosen: a partial wildcard is not a principal IAM can resolve.
    (
        Kind::Trust,
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/*"}, "Action": "sts:AssumeRole"}}"#,
        r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:role/*""#,
    ),
    // reported (hashicorp/terraform-provider-aws#10419): PutGroupPolicy with a principal.
    (
        Kind::Identity,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": ["arn:aws:iam::123456789012:role/iac"], "Principal": {"AWS": ["arn:aws:iam::123456789012:user/iac"]}}]}"#,
        "Policy document should not specify a principal.",
    ),
    // reported (trussworks/terraform-aws-s3-anti-virus#28): PutRolePolicy without resources.
    (
        Kind::Identity,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Publish"}]}"#,
        "Policy statement must contain resources.",
    ),
    // A function's resource policy as Lambda's AddPermission writes it.
    (
        Kind::Resource,
        r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f","Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"}}}]}"#,
        "",
    ),
    // chosen (S3's wording, reported in spantaleev/matrix-docker-ansible-deploy#1869).
    (
        Kind::Resource,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}"#,
        "Missing required field Principal",
    ),
    // Unknown condition operators are syntax errors (moto's table has the same rule).
    (
        Kind::Resource,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"StringEqualz": {"aws:SourceArn": "x"}}}]}"#,
        "Syntax errors in policy.",
    ),
    (
        Kind::Resource,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*"]}, "Null": {"aws:SourceArn": "false"}}}]}"#,
        "",
    ),
    // Null takes no IfExists (chosen: an unknown operator to IAM's grammar).
    (
        Kind::Resource,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"NullIfExists": {"aws:SourceArn": "false"}}}]}"#,
        "Syntax errors in policy.",
    ),
];

#[test]
fn kinds_have_their_own_rules() {
    for (kind, doc, expected) in KIND_CASES {
        check(doc, *kind, expected);
    }
}

#[test]
fn documents_are_kept_as_submitted() {
    let text = "{\n  \"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"}}";
    let policy = Policy::parse(text, Kind::Identity).expect("valid");
    assert_eq!(policy.text(), text);
    assert!(policy.url_encoded().starts_with("%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22%2C"), "{}", policy.url_encoded());
}
