//! IAM's and STS's half of the authorization table: each call's IAM action and resource, as
//! the Service Authorization Reference lists them for IAM and STS. Users and roles are named
//! with their paths (`arn:aws:iam::<account>:user/<path><name>`); a call without a user name
//! acts on the caller; AssumeRole acts on the role (whose trust policy must let the caller
//! in); GetCallerIdentity and GetSessionToken need no permission on AWS.

use super::*;
use crate::authz::{Scope, Target};

/// `arn:aws:iam::<account>:<kind>/<path><name>` (path `/` when none is given).
fn iam_arn(scope: &Scope<'_>, kind: &str, path: Option<&str>, name: &str) -> String {
    format!("arn:aws:iam::{}:{kind}{}{name}", scope.account, path.unwrap_or("/"))
}

/// User `name`, with its path if it exists; the caller when no name is given.
fn user(scope: &Scope<'_>, name: Option<&str>) -> String {
    match name {
        Some(name) => scope.names.iam_user_arn(name).unwrap_or_else(|| iam_arn(scope, "user", None, name)),
        None => scope.principal.to_string(),
    }
}

fn role(scope: &Scope<'_>, name: &str) -> String {
    scope.names.iam_role_arn(name).unwrap_or_else(|| iam_arn(scope, "role", None, name))
}

impl IamRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use IamCall::*;
        let on_user = |action, name: &str| Target::on(action, user(scope, Some(name)));
        let on_role = |action, name: &str| Target::on(action, role(scope, name));
        Some(match self.call.as_ref().ok()? {
            CreateUser(i) => Target::on("iam:CreateUser", iam_arn(scope, "user", i.path.as_deref(), &i.user_name)),
            GetUser(i) => Target::on("iam:GetUser", user(scope, i.user_name.as_deref())),
            ListUsers(_) => Target::any("iam:ListUsers"),
            DeleteUser(i) => on_user("iam:DeleteUser", &i.user_name),
            CreateAccessKey(i) => Target::on("iam:CreateAccessKey", user(scope, i.user_name.as_deref())),
            ListAccessKeys(i) => Target::on("iam:ListAccessKeys", user(scope, i.user_name.as_deref())),
            UpdateAccessKey(i) => Target::on("iam:UpdateAccessKey", user(scope, i.user_name.as_deref())),
            DeleteAccessKey(i) => Target::on("iam:DeleteAccessKey", user(scope, i.user_name.as_deref())),
            CreateRole(i) => Target::on("iam:CreateRole", iam_arn(scope, "role", i.path.as_deref(), &i.role_name)),
            GetRole(i) => on_role("iam:GetRole", &i.role_name),
            ListRoles(_) => Target::any("iam:ListRoles"),
            DeleteRole(i) => on_role("iam:DeleteRole", &i.role_name),
            UpdateAssumeRolePolicy(i) => on_role("iam:UpdateAssumeRolePolicy", &i.role_name),
            PutRolePolicy(i) => on_role("iam:PutRolePolicy", &i.role_name),
            GetRolePolicy(i) => on_role("iam:GetRolePolicy", &i.role_name),
            DeleteRolePolicy(i) => on_role("iam:DeleteRolePolicy", &i.role_name),
            ListRolePolicies(i) => on_role("iam:ListRolePolicies", &i.role_name),
            PutUserPolicy(i) => on_user("iam:PutUserPolicy", &i.user_name),
            GetUserPolicy(i) => on_user("iam:GetUserPolicy", &i.user_name),
            DeleteUserPolicy(i) => on_user("iam:DeleteUserPolicy", &i.user_name),
            ListUserPolicies(i) => on_user("iam:ListUserPolicies", &i.user_name),
            CreatePolicy(i) => Target::on("iam:CreatePolicy", iam_arn(scope, "policy", i.path.as_deref(), &i.policy_name)),
            GetPolicy(i) => Target::on("iam:GetPolicy", i.policy_arn.clone()),
            GetPolicyVersion(i) => Target::on("iam:GetPolicyVersion", i.policy_arn.clone()),
            DeletePolicy(i) => Target::on("iam:DeletePolicy", i.policy_arn.clone()),
            ListPolicies(_) => Target::any("iam:ListPolicies"),
            AttachRolePolicy(i) => on_role("iam:AttachRolePolicy", &i.role_name).with("iam:PolicyARN", i.policy_arn.clone()),
            DetachRolePolicy(i) => on_role("iam:DetachRolePolicy", &i.role_name).with("iam:PolicyARN", i.policy_arn.clone()),
            ListAttachedRolePolicies(i) => on_role("iam:ListAttachedRolePolicies", &i.role_name),
            AttachUserPolicy(i) => on_user("iam:AttachUserPolicy", &i.user_name).with("iam:PolicyARN", i.policy_arn.clone()),
            DetachUserPolicy(i) => on_user("iam:DetachUserPolicy", &i.user_name).with("iam:PolicyARN", i.policy_arn.clone()),
            ListAttachedUserPolicies(i) => on_user("iam:ListAttachedUserPolicies", &i.user_name),
        })
    }
}

impl StsRequest {
    /// What IAM authorizes this call as (None when it did not decode, and for the calls AWS
    /// lets anyone make: GetCallerIdentity, GetSessionToken).
    pub(crate) fn target(&self, _scope: &Scope<'_>) -> Option<Target> {
        match self.call.as_ref().ok()? {
            StsCall::GetCallerIdentity(_) | StsCall::GetSessionToken(_) => None,
            StsCall::AssumeRole(i) => Some(
                Target::on("sts:AssumeRole", i.role_arn.clone())
                    .with("sts:RoleSessionName", i.role_session_name.clone())
                    .with_some("sts:ExternalId", i.external_id.clone()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::testing::{check, context, form, scope, target, CALLER};

    const ANN: &str = "arn:aws:iam::123456789012:user/team/ann";
    const BOB: &str = "arn:aws:iam::123456789012:user/bob";
    const DEPLOYER: &str = "arn:aws:iam::123456789012:role/ci/deployer";
    const POLICY: &str = "arn:aws:iam::123456789012:policy/p";
    const POLICY_ENC: &str = "arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fp";

    #[test]
    fn actions_and_resources() {
        let q = |rest: &str| form(&format!("Version=2010-05-08&{rest}"));
        let doc = "%7B%7D";
        check(vec![
            (q("Action=CreateUser&UserName=carl&Path=%2Fops%2F"), "iam:CreateUser", "arn:aws:iam::123456789012:user/ops/carl"),
            (q("Action=CreateUser&UserName=bob"), "iam:CreateUser", BOB),
            // Existing users and roles with their paths; a user that does not exist at `/`.
            (q("Action=GetUser&UserName=ann"), "iam:GetUser", ANN),
            (q("Action=GetUser&UserName=bob"), "iam:GetUser", BOB),
            // No user name: the caller.
            (q("Action=GetUser"), "iam:GetUser", CALLER),
            (q("Action=ListUsers"), "iam:ListUsers", "*"),
            (q("Action=DeleteUser&UserName=ann"), "iam:DeleteUser", ANN),
            (q("Action=CreateAccessKey"), "iam:CreateAccessKey", CALLER),
            (q("Action=CreateAccessKey&UserName=ann"), "iam:CreateAccessKey", ANN),
            (q("Action=ListAccessKeys"), "iam:ListAccessKeys", CALLER),
            (q("Action=UpdateAccessKey&AccessKeyId=AKIAX&Status=Inactive"), "iam:UpdateAccessKey", CALLER),
            (q("Action=DeleteAccessKey&UserName=ann&AccessKeyId=AKIAX"), "iam:DeleteAccessKey", ANN),
            (q(&format!("Action=CreateRole&RoleName=r&AssumeRolePolicyDocument={doc}")), "iam:CreateRole", "arn:aws:iam::123456789012:role/r"),
            (q("Action=GetRole&RoleName=deployer"), "iam:GetRole", DEPLOYER),
            (q("Action=ListRoles"), "iam:ListRoles", "*"),
            (q("Action=DeleteRole&RoleName=deployer"), "iam:DeleteRole", DEPLOYER),
            (q(&format!("Action=UpdateAssumeRolePolicy&RoleName=deployer&PolicyDocument={doc}")), "iam:UpdateAssumeRolePolicy", DEPLOYER),
            (q(&format!("Action=PutRolePolicy&RoleName=deployer&PolicyName=p&PolicyDocument={doc}")), "iam:PutRolePolicy", DEPLOYER),
            (q("Action=GetRolePolicy&RoleName=deployer&PolicyName=p"), "iam:GetRolePolicy", DEPLOYER),
            (q("Action=DeleteRolePolicy&RoleName=deployer&PolicyName=p"), "iam:DeleteRolePolicy", DEPLOYER),
            (q("Action=ListRolePolicies&RoleName=deployer"), "iam:ListRolePolicies", DEPLOYER),
            (q(&format!("Action=PutUserPolicy&UserName=ann&PolicyName=p&PolicyDocument={doc}")), "iam:PutUserPolicy", ANN),
            (q("Action=GetUserPolicy&UserName=ann&PolicyName=p"), "iam:GetUserPolicy", ANN),
            (q("Action=DeleteUserPolicy&UserName=ann&PolicyName=p"), "iam:DeleteUserPolicy", ANN),
            (q("Action=ListUserPolicies&UserName=ann"), "iam:ListUserPolicies", ANN),
            (q(&format!("Action=CreatePolicy&PolicyName=p&PolicyDocument={doc}")), "iam:CreatePolicy", POLICY),
            (q(&format!("Action=GetPolicy&PolicyArn={POLICY_ENC}")), "iam:GetPolicy", POLICY),
            (q(&format!("Action=GetPolicyVersion&PolicyArn={POLICY_ENC}&VersionId=v1")), "iam:GetPolicyVersion", POLICY),
            (q(&format!("Action=DeletePolicy&PolicyArn={POLICY_ENC}")), "iam:DeletePolicy", POLICY),
            (q("Action=ListPolicies"), "iam:ListPolicies", "*"),
            (q(&format!("Action=AttachRolePolicy&RoleName=deployer&PolicyArn={POLICY_ENC}")), "iam:AttachRolePolicy", DEPLOYER),
            (q(&format!("Action=DetachRolePolicy&RoleName=deployer&PolicyArn={POLICY_ENC}")), "iam:DetachRolePolicy", DEPLOYER),
            (q("Action=ListAttachedRolePolicies&RoleName=deployer"), "iam:ListAttachedRolePolicies", DEPLOYER),
            (q(&format!("Action=AttachUserPolicy&UserName=ann&PolicyArn={POLICY_ENC}")), "iam:AttachUserPolicy", ANN),
            (q(&format!("Action=DetachUserPolicy&UserName=ann&PolicyArn={POLICY_ENC}")), "iam:DetachUserPolicy", ANN),
            (q("Action=ListAttachedUserPolicies&UserName=ann"), "iam:ListAttachedUserPolicies", ANN),
            (
                form("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci%2Fdeployer&RoleSessionName=s"),
                "sts:AssumeRole",
                DEPLOYER,
            ),
        ]);
        let t = target(&q(&format!("Action=AttachUserPolicy&UserName=ann&PolicyArn={POLICY_ENC}")));
        assert_eq!(context(&t, "iam:PolicyARN"), Some(&[POLICY.to_string()][..]));
    }

    #[test]
    fn sts_calls_anyone_may_make_are_not_authorized() {
        for body in ["Action=GetCallerIdentity&Version=2011-06-15", "Action=GetSessionToken&Version=2011-06-15"] {
            assert!(form(body).target(&scope()).is_none(), "{body}");
        }
        let t = target(&form(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&ExternalId=x",
        ));
        assert_eq!(context(&t, "sts:ExternalId"), Some(&["x".to_string()][..]));
        assert_eq!(context(&t, "sts:RoleSessionName"), Some(&["s".to_string()][..]));
    }
}
