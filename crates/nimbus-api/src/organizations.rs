//! AWS Organizations on the wire (JSON 1.1, `X-Amz-Target: AWSOrganizationsV20161128.*`):
//! the organization and its accounts, decoded against Organizations' model into typed calls
//! for `nimbus_iam::organizations` and answered in its shapes. CreateAccount opens the new
//! account's services through [`crate::accounts::Accounts`] before it answers.

use http::Response;
use nimbus_iam::organizations::{AccountRecord, CreateAccountStatus, OrganizationRecord, OrganizationsError};
use nimbus_protocol::{calls, encode, AwsError, DecodeError, Protocol, ORGANIZATIONS};
use serde::{Deserialize, Serialize};

use crate::authz::{Scope, Target};
use crate::response::Body;
use crate::server::AppState;

/// The `X-Amz-Target` prefix of Organizations.
pub const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";

/// One Organizations request: the operation, decoded (or the error AWS would answer).
#[derive(Debug)]
pub struct OrganizationsRequest {
    pub operation: &'static str,
    pub call: Result<OrganizationsCall, Error>,
}

calls! {
    iam "organizations";
    /// Every Organizations operation Nimbus serves, with its typed input.
    pub enum OrganizationsCall {
        CreateOrganization(CreateOrganizationInput),
        DescribeOrganization(Nothing),
        CreateAccount(CreateAccountInput),
        DescribeCreateAccountStatus(DescribeCreateAccountStatusInput),
        ListCreateAccountStatus(ListCreateAccountStatusInput),
        DescribeAccount(DescribeAccountInput),
        ListAccounts(ListAccountsInput),
    }
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOrganizationInput {
    feature_set: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccountInput {
    email: String,
    account_name: String,
    role_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCreateAccountStatusInput {
    create_account_request_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCreateAccountStatusInput {
    states: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAccountInput {
    account_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAccountsInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// An Organizations error as the wire carries it: the domain's, or one of decoding.
#[derive(Debug)]
pub enum Error {
    Domain(OrganizationsError),
    /// 400 `InvalidInputException` from the model's constraints.
    Invalid(String),
    /// 400 `UnknownOperationException`.
    UnknownOperation(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Domain(e) => e.fmt(f),
            Error::Invalid(m) | Error::UnknownOperation(m) => f.write_str(m),
        }
    }
}

impl AwsError for Error {
    fn code(&self) -> &str {
        match self {
            Error::Domain(e) => e.code(),
            Error::Invalid(_) => "InvalidInputException",
            Error::UnknownOperation(_) => "UnknownOperationException",
        }
    }
    fn status(&self) -> u16 {
        match self {
            Error::Domain(e) => e.status(),
            _ => 400,
        }
    }
    fn capital_message(&self) -> bool {
        true
    }
}

impl From<OrganizationsError> for Error {
    fn from(e: OrganizationsError) -> Self {
        Error::Domain(e)
    }
}

impl OrganizationsRequest {
    /// The IAM action name (`organizations:CreateAccount`).
    pub fn name(&self) -> &'static str {
        OrganizationsCall::iam_action(self.operation).unwrap_or("organizations:Unknown")
    }

    /// What IAM authorizes this call as (the Service Authorization Reference for AWS
    /// Organizations: accounts by their ARN, the rest on `*`).
    pub(crate) fn target(&self, _scope: &Scope<'_>) -> Option<Target> {
        let call = self.call.as_ref().ok()?;
        Some(Target::any(OrganizationsCall::iam_action(call.operation())?))
    }
}

/// Decodes the body of an `AWSOrganizationsV20161128.<operation>` request.
pub fn parse(operation: &str, body: &[u8]) -> OrganizationsRequest {
    match OrganizationsCall::from_json(&ORGANIZATIONS, operation, body) {
        Some((operation, call)) => OrganizationsRequest { operation, call: call.map_err(decode_error) },
        None => OrganizationsRequest {
            operation: "Unknown",
            call: Err(Error::UnknownOperation(format!("Operation {operation} is not supported by this endpoint."))),
        },
    }
}

fn decode_error(e: DecodeError) -> Error {
    match e {
        DecodeError::Missing { member } => {
            Error::Invalid(format!("You provided a value that does not match the required pattern: {member} is required"))
        }
        other => Error::Invalid(format!("Could not parse the request body: {other}")),
    }
}

// ---- typed outputs -----------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Organization<'a> {
    id: &'a str,
    arn: String,
    feature_set: &'a str,
    master_account_arn: String,
    master_account_id: &'a str,
    master_account_email: &'a str,
    available_policy_types: [(); 0],
}

impl<'a> Organization<'a> {
    fn new(o: &'a OrganizationRecord) -> Self {
        Organization {
            id: &o.id,
            arn: o.arn(),
            feature_set: &o.feature_set,
            master_account_arn: o.account_arn(&o.management_account),
            master_account_id: &o.management_account,
            master_account_email: &o.management_email,
            available_policy_types: [],
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OrganizationOutput<'a> {
    organization: Organization<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Account<'a> {
    id: &'a str,
    arn: String,
    email: &'a str,
    name: &'a str,
    status: &'static str,
    state: &'static str,
    joined_method: &'a str,
    joined_timestamp: f64,
}

impl<'a> Account<'a> {
    fn new(o: &OrganizationRecord, a: &'a AccountRecord) -> Self {
        Account {
            id: &a.id,
            arn: o.account_arn(&a.id),
            email: &a.email,
            name: &a.name,
            status: "ACTIVE",
            state: "ACTIVE",
            joined_method: &a.joined_method,
            joined_timestamp: a.joined,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Status<'a> {
    id: &'a str,
    account_name: &'a str,
    state: &'a str,
    requested_timestamp: f64,
    completed_timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
}

impl<'a> Status<'a> {
    fn new(s: &'a CreateAccountStatus) -> Self {
        Status {
            id: &s.id,
            account_name: &s.account_name,
            state: &s.state,
            requested_timestamp: s.requested,
            completed_timestamp: s.completed,
            account_id: s.account_id.as_deref(),
            failure_reason: s.failure_reason.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatusOutput<'a> {
    create_account_status: Status<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatusesOutput<'a> {
    create_account_statuses: Vec<Status<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountOutput<'a> {
    account: Account<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountsOutput<'a> {
    accounts: Vec<Account<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// One page of `all` from `token` (an index), at most `max` (1..=20, AWS's bounds).
fn page<T>(all: Vec<T>, token: Option<&str>, max: Option<i64>) -> Result<(Vec<T>, Option<String>), Error> {
    let max = match max {
        None => 20,
        Some(m) if (1..=20).contains(&m) => m as usize,
        Some(m) => {
            return Err(Error::Invalid(format!(
                "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                if m < 1 { "greater than or equal to 1" } else { "less than or equal to 20" }
            )))
        }
    };
    let start = match token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| Error::Invalid("The specified token is not valid.".into()))?,
    };
    let next = (start + max < all.len()).then(|| (start + max).to_string());
    Ok((all.into_iter().skip(start).take(max).collect(), next))
}

fn reply<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<bytes::Bytes> {
    encode::output(&ORGANIZATIONS, Protocol::AwsJson1_1, operation, output, request_id)
}

async fn run(state: &AppState, caller_account: &str, call: OrganizationsCall, rid: &str) -> Result<Response<bytes::Bytes>, Error> {
    let orgs = &state.accounts.organizations;
    let op = call.operation();
    Ok(match call {
        OrganizationsCall::CreateOrganization(i) => {
            let o = orgs.create_organization(caller_account, i.feature_set).await?;
            reply(op, rid, &OrganizationOutput { organization: Organization::new(&o) })
        }
        OrganizationsCall::DescribeOrganization(_) => {
            let o = orgs.describe_organization(caller_account)?;
            reply(op, rid, &OrganizationOutput { organization: Organization::new(&o) })
        }
        OrganizationsCall::CreateAccount(i) => {
            let role = i.role_name.unwrap_or_else(|| "OrganizationAccountAccessRole".into());
            let accounts = state.accounts.clone();
            let caller = caller_account.to_string();
            // In a task of its own: a caller gone meanwhile leaves no account half made (opened
            // but not recorded, or recorded but not opened).
            let status = tokio::spawn(async move {
                let orgs = accounts.organizations.clone();
                orgs.create_account(&caller, i.account_name, i.email, |id| async move { accounts.create(id, role).await }).await
            })
            .await
            .map_err(|e| Error::Domain(OrganizationsError::Internal(format!("creating the account: {e}"))))??;
            reply(op, rid, &StatusOutput { create_account_status: Status::new(&status) })
        }
        OrganizationsCall::DescribeCreateAccountStatus(i) => {
            let s = orgs.create_account_status(caller_account, &i.create_account_request_id)?;
            reply(op, rid, &StatusOutput { create_account_status: Status::new(&s) })
        }
        OrganizationsCall::ListCreateAccountStatus(i) => {
            let all = orgs.create_account_statuses(caller_account, &i.states.unwrap_or_default())?;
            let (items, next_token) = page(all, i.next_token.as_deref(), i.max_results)?;
            reply(op, rid, &StatusesOutput { create_account_statuses: items.iter().map(Status::new).collect(), next_token })
        }
        OrganizationsCall::DescribeAccount(i) => {
            let (o, a) = orgs.describe_account(caller_account, &i.account_id)?;
            reply(op, rid, &AccountOutput { account: Account::new(&o, &a) })
        }
        OrganizationsCall::ListAccounts(i) => {
            let (o, all) = orgs.list_accounts(caller_account)?;
            let (items, next_token) = page(all, i.next_token.as_deref(), i.max_results)?;
            reply(op, rid, &AccountsOutput { accounts: items.iter().map(|a| Account::new(&o, a)).collect(), next_token })
        }
    })
}

/// Runs a request for a caller of `caller_account` and answers in Organizations' shapes.
pub async fn execute(state: &AppState, req: OrganizationsRequest, caller_account: &str) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(state, caller_account, call, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let Error::Domain(OrganizationsError::Internal(why)) = &e {
            tracing::error!(operation = req.operation, "organizations: {why}");
        }
        encode::error(&ORGANIZATIONS, Protocol::AwsJson1_1, &e, &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("CreateAccount", br#"{"Email":"a@example.com","AccountName":"a"}"#, "ok"),
            ("CreateAccount", br#"{"AccountName":"a"}"#, "InvalidInputException"),
            ("ListAccounts", b"{}", "ok"),
            ("DescribeOrganization", b"", "ok"),
            ("DescribeAccount", br#"{"AccountId":"111122223333"}"#, "ok"),
            ("InviteAccountToOrganization", b"{}", "UnknownOperationException"),
        ];
        for (op, body, want) in cases {
            let got = match &parse(op, body).call {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code().to_string(),
            };
            assert_eq!(got, *want, "{op} {}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn pages() {
        let all: Vec<u32> = (0..45).collect();
        let (p1, t1) = page(all.clone(), None, None).unwrap();
        assert_eq!((p1.len(), t1.as_deref()), (20, Some("20")));
        let (p3, t3) = page(all.clone(), Some("40"), None).unwrap();
        assert_eq!((p3, t3), (vec![40, 41, 42, 43, 44], None));
        assert!(matches!(page(all.clone(), None, Some(21)), Err(Error::Invalid(_))));
        assert!(matches!(page(all, Some("x"), None), Err(Error::Invalid(_))));
    }
}
