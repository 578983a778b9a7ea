//! Lambda's half of the authorization table: each call's IAM action and the ARN of the
//! resource it acts on, as the Service Authorization Reference lists them for Lambda.

use super::*;
use crate::authz::{Scope, Target};

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` for any of the ways a
/// call names a function (name, `name:qualifier`, partial or full ARN), with `qualifier`.
pub(crate) fn function_arn(scope: &Scope<'_>, name: &str, qualifier: Option<&str>) -> String {
    let base = if name.starts_with("arn:") {
        name.to_string()
    } else if name.contains(":function:") {
        format!("arn:aws:lambda:{}:{name}", scope.region)
    } else {
        format!("arn:aws:lambda:{}:{}:function:{name}", scope.region, scope.account)
    };
    match qualifier.filter(|q| !q.is_empty()) {
        // A qualifier in the name and the same one in `Qualifier` (they must agree).
        Some(q) if base.split(':').nth(7) == Some(q) => base,
        Some(q) => format!("{base}:{q}"),
        None => base,
    }
}

fn lambda_arn(scope: &Scope<'_>, kind: &str, id: &str) -> String {
    format!("arn:aws:lambda:{}:{}:{kind}:{id}", scope.region, scope.account)
}

/// A layer's ARN, or a version's; `name` may already be an ARN.
fn layer_arn(scope: &Scope<'_>, name: &str, version: Option<i64>) -> String {
    let base = if name.starts_with("arn:") { name.to_string() } else { lambda_arn(scope, "layer", name) };
    match version {
        Some(v) => format!("{base}:{v}"),
        None => base,
    }
}

impl LambdaCall {
    /// The IAM action and resource of this call.
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Target {
        use LambdaCall::*;
        let f = |action, name: &str, q: Option<&str>| Target::on(action, function_arn(scope, name, q));
        match self {
            CreateFunction(i) => f("lambda:CreateFunction", &i.function_name, None),
            GetFunction(i) => f("lambda:GetFunction", &i.function_name, i.qualifier.as_deref()),
            GetFunctionConfiguration(i) => f("lambda:GetFunctionConfiguration", &i.function_name, i.qualifier.as_deref()),
            ListFunctions(_) => Target::any("lambda:ListFunctions"),
            UpdateFunctionCode(i) => f("lambda:UpdateFunctionCode", &i.function_name, None),
            UpdateFunctionConfiguration(i) => f("lambda:UpdateFunctionConfiguration", &i.function_name, None),
            DeleteFunction(i) => f("lambda:DeleteFunction", &i.function_name, i.qualifier.as_deref()),
            PublishVersion(i) => f("lambda:PublishVersion", &i.function_name, None),
            ListVersionsByFunction(i) => f("lambda:ListVersionsByFunction", &i.function_name, None),
            CreateAlias(i) => f("lambda:CreateAlias", &i.function_name, None),
            GetAlias(i) => f("lambda:GetAlias", &i.function_name, None),
            UpdateAlias(i) => f("lambda:UpdateAlias", &i.function_name, None),
            DeleteAlias(i) => f("lambda:DeleteAlias", &i.function_name, None),
            ListAliases(i) => f("lambda:ListAliases", &i.function_name, None),
            GetAccountSettings(_) => Target::any("lambda:GetAccountSettings"),
            PutFunctionConcurrency(i) => f("lambda:PutFunctionConcurrency", &i.function_name, None),
            GetFunctionConcurrency(i) => f("lambda:GetFunctionConcurrency", &i.function_name, None),
            DeleteFunctionConcurrency(i) => f("lambda:DeleteFunctionConcurrency", &i.function_name, None),
            PutProvisionedConcurrencyConfig(i) => f("lambda:PutProvisionedConcurrencyConfig", &i.function_name, Some(&i.qualifier)),
            GetProvisionedConcurrencyConfig(i) => f("lambda:GetProvisionedConcurrencyConfig", &i.function_name, i.qualifier.as_deref()),
            DeleteProvisionedConcurrencyConfig(i) => {
                f("lambda:DeleteProvisionedConcurrencyConfig", &i.function_name, i.qualifier.as_deref())
            }
            ListProvisionedConcurrencyConfigs(i) => f("lambda:ListProvisionedConcurrencyConfigs", &i.function_name, None),
            PublishLayerVersion(i) => Target::on("lambda:PublishLayerVersion", layer_arn(scope, &i.layer_name, None)),
            GetLayerVersion(i) => Target::on("lambda:GetLayerVersion", layer_arn(scope, &i.layer_name, Some(i.version_number))),
            GetLayerVersionByArn(i) => Target::on("lambda:GetLayerVersion", i.arn.clone()),
            ListLayers(_) => Target::any("lambda:ListLayers"),
            ListLayerVersions(i) => match &i.layer_name {
                Some(name) => Target::on("lambda:ListLayerVersions", layer_arn(scope, name, None)),
                None => Target::any("lambda:ListLayerVersions"),
            },
            DeleteLayerVersion(i) => Target::on("lambda:DeleteLayerVersion", layer_arn(scope, &i.layer_name, Some(i.version_number))),
            AddLayerVersionPermission(i) => {
                Target::on("lambda:AddLayerVersionPermission", layer_arn(scope, &i.layer_name, Some(i.version_number)))
            }
            RemoveLayerVersionPermission(i) => {
                Target::on("lambda:RemoveLayerVersionPermission", layer_arn(scope, &i.layer_name, Some(i.version_number)))
            }
            GetLayerVersionPolicy(i) => Target::on("lambda:GetLayerVersionPolicy", layer_arn(scope, &i.layer_name, Some(i.version_number))),
            // Invoking is one permission however the answer travels.
            Invoke(i) | InvokeWithResponseStream(i) => f("lambda:InvokeFunction", &i.function_name, i.qualifier.as_deref()),
            InvokeAsync(i) => f("lambda:InvokeAsync", &i.function_name, None),
            // Creating a mapping is authorized on no resource, with the function as a
            // condition key (`lambda:FunctionArn`), as AWS does.
            CreateEventSourceMapping(i) => {
                let t = Target::any("lambda:CreateEventSourceMapping");
                match &i.function_name {
                    Some(name) => t.with("lambda:FunctionArn", function_arn(scope, name, None)),
                    None => t,
                }
            }
            GetEventSourceMapping(i) => Target::on("lambda:GetEventSourceMapping", lambda_arn(scope, "event-source-mapping", &i.uuid)),
            UpdateEventSourceMapping(i) => Target::on(
                "lambda:UpdateEventSourceMapping",
                lambda_arn(scope, "event-source-mapping", i.uuid.as_deref().unwrap_or_default()),
            ),
            DeleteEventSourceMapping(i) => {
                Target::on("lambda:DeleteEventSourceMapping", lambda_arn(scope, "event-source-mapping", &i.uuid))
            }
            ListEventSourceMappings(_) => Target::any("lambda:ListEventSourceMappings"),
            CreateFunctionUrlConfig(i) => {
                let t = f("lambda:CreateFunctionUrlConfig", &i.function_name, i.qualifier.as_deref());
                match &i.auth_type {
                    Some(a) => t.with("lambda:FunctionUrlAuthType", a.clone()),
                    None => t,
                }
            }
            GetFunctionUrlConfig(i) => f("lambda:GetFunctionUrlConfig", &i.function_name, i.qualifier.as_deref()),
            UpdateFunctionUrlConfig(i) => {
                let t = f("lambda:UpdateFunctionUrlConfig", &i.function_name, i.qualifier.as_deref());
                match &i.auth_type {
                    Some(a) => t.with("lambda:FunctionUrlAuthType", a.clone()),
                    None => t,
                }
            }
            DeleteFunctionUrlConfig(i) => f("lambda:DeleteFunctionUrlConfig", &i.function_name, i.qualifier.as_deref()),
            ListFunctionUrlConfigs(i) => f("lambda:ListFunctionUrlConfigs", &i.function_name, None),
            PutFunctionEventInvokeConfig(i) => f("lambda:PutFunctionEventInvokeConfig", &i.function_name, i.qualifier.as_deref()),
            UpdateFunctionEventInvokeConfig(i) => f("lambda:UpdateFunctionEventInvokeConfig", &i.function_name, i.qualifier.as_deref()),
            GetFunctionEventInvokeConfig(i) => f("lambda:GetFunctionEventInvokeConfig", &i.function_name, i.qualifier.as_deref()),
            DeleteFunctionEventInvokeConfig(i) => f("lambda:DeleteFunctionEventInvokeConfig", &i.function_name, i.qualifier.as_deref()),
            ListFunctionEventInvokeConfigs(i) => f("lambda:ListFunctionEventInvokeConfigs", &i.function_name, None),
            TagResource(i) => Target::on("lambda:TagResource", i.resource.clone()),
            UntagResource(i) => Target::on("lambda:UntagResource", i.resource.clone()),
            ListTags(i) => Target::on("lambda:ListTags", i.resource.clone()),
            AddPermission(i) => {
                f("lambda:AddPermission", &i.function_name, i.qualifier.as_deref()).with("lambda:Principal", i.principal.clone())
            }
            GetPolicy(i) => f("lambda:GetPolicy", &i.function_name, i.qualifier.as_deref()),
            RemovePermission(i) => f("lambda:RemovePermission", &i.function_name, i.qualifier.as_deref()),
            GetFunctionRecursionConfig(i) => f("lambda:GetFunctionRecursionConfig", &i.function_name, i.qualifier.as_deref()),
            PutFunctionRecursionConfig(i) => f("lambda:PutFunctionRecursionConfig", &i.function_name, None),
            CreateCodeSigningConfig(_) => Target::any("lambda:CreateCodeSigningConfig"),
            GetCodeSigningConfig(i) => csc("lambda:GetCodeSigningConfig", i),
            UpdateCodeSigningConfig(i) => csc("lambda:UpdateCodeSigningConfig", i),
            DeleteCodeSigningConfig(i) => csc("lambda:DeleteCodeSigningConfig", i),
            ListCodeSigningConfigs(_) => Target::any("lambda:ListCodeSigningConfigs"),
            ListFunctionsByCodeSigningConfig(i) => csc("lambda:ListFunctionsByCodeSigningConfig", i),
            PutFunctionCodeSigningConfig(i) => f("lambda:PutFunctionCodeSigningConfig", &i.function_name, None),
            GetFunctionCodeSigningConfig(i) => f("lambda:GetFunctionCodeSigningConfig", &i.function_name, None),
            DeleteFunctionCodeSigningConfig(i) => f("lambda:DeleteFunctionCodeSigningConfig", &i.function_name, None),
            GetRuntimeManagementConfig(i) => f("lambda:GetRuntimeManagementConfig", &i.function_name, i.qualifier.as_deref()),
            PutRuntimeManagementConfig(i) => f("lambda:PutRuntimeManagementConfig", &i.function_name, i.qualifier.as_deref()),
            GetResourcePolicy(i) => Target::on("lambda:GetResourcePolicy", i.resource_arn.clone()),
            PutResourcePolicy(i) => Target::on("lambda:PutResourcePolicy", i.resource_arn.clone()),
            DeleteResourcePolicy(i) => Target::on("lambda:DeleteResourcePolicy", i.resource_arn.clone()),
            GetFunctionScalingConfig(i) => unbuilt("lambda:GetFunctionScalingConfig", scope, i),
            PutFunctionScalingConfig(i) => unbuilt("lambda:PutFunctionScalingConfig", scope, i),
            CreateCapacityProvider(i) => unbuilt("lambda:CreateCapacityProvider", scope, i),
            GetCapacityProvider(i) => unbuilt("lambda:GetCapacityProvider", scope, i),
            UpdateCapacityProvider(i) => unbuilt("lambda:UpdateCapacityProvider", scope, i),
            DeleteCapacityProvider(i) => unbuilt("lambda:DeleteCapacityProvider", scope, i),
            ListCapacityProviders(_) => Target::any("lambda:ListCapacityProviders"),
            ListFunctionVersionsByCapacityProvider(i) => unbuilt("lambda:ListFunctionVersionsByCapacityProvider", scope, i),
            GetDurableExecution(i) => unbuilt("lambda:GetDurableExecution", scope, i),
            GetDurableExecutionHistory(i) => unbuilt("lambda:GetDurableExecutionHistory", scope, i),
            GetDurableExecutionState(i) => unbuilt("lambda:GetDurableExecutionState", scope, i),
            ListDurableExecutionsByFunction(i) => unbuilt("lambda:ListDurableExecutionsByFunction", scope, i),
            StopDurableExecution(i) => unbuilt("lambda:StopDurableExecution", scope, i),
            PauseDurableExecution(i) => unbuilt("lambda:PauseDurableExecution", scope, i),
            ResumeDurableExecution(i) => unbuilt("lambda:ResumeDurableExecution", scope, i),
            DeleteDurableExecution(i) => unbuilt("lambda:DeleteDurableExecution", scope, i),
            CheckpointDurableExecution(i) => unbuilt("lambda:CheckpointDurableExecution", scope, i),
            SendDurableExecutionCallbackSuccess(i) => unbuilt("lambda:SendDurableExecutionCallbackSuccess", scope, i),
            SendDurableExecutionCallbackFailure(i) => unbuilt("lambda:SendDurableExecutionCallbackFailure", scope, i),
            SendDurableExecutionCallbackHeartbeat(i) => unbuilt("lambda:SendDurableExecutionCallbackHeartbeat", scope, i),
        }
    }
}

fn csc(action: &'static str, i: &CodeSigningConfigInput) -> Target {
    match &i.code_signing_config_arn {
        Some(arn) => Target::on(action, arn.clone()),
        None => Target::any(action),
    }
}

fn unbuilt(action: &'static str, scope: &Scope<'_>, i: &UnbuiltInput) -> Target {
    match (&i.function_name, &i.capacity_provider_name, &i.durable_execution_arn) {
        (Some(name), _, _) => Target::on(action, function_arn(scope, name, i.qualifier.as_deref())),
        (None, Some(p), _) => Target::on(action, lambda_arn(scope, "capacity-provider", p)),
        (None, None, Some(arn)) => Target::on(action, arn.clone()),
        _ => Target::any(action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_arns() {
        let scope = crate::authz::testing::scope();
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("f", None, "arn:aws:lambda:us-east-1:123456789012:function:f"),
            ("f", Some("live"), "arn:aws:lambda:us-east-1:123456789012:function:f:live"),
            ("f:live", None, "arn:aws:lambda:us-east-1:123456789012:function:f:live"),
            ("f", Some(""), "arn:aws:lambda:us-east-1:123456789012:function:f"),
            ("123456789012:function:f", None, "arn:aws:lambda:us-east-1:123456789012:function:f"),
            ("arn:aws:lambda:eu-west-1:111122223333:function:g", Some("3"), "arn:aws:lambda:eu-west-1:111122223333:function:g:3"),
            ("arn:aws:lambda:eu-west-1:111122223333:function:g:3", Some("3"), "arn:aws:lambda:eu-west-1:111122223333:function:g:3"),
        ];
        for (name, q, want) in cases {
            assert_eq!(function_arn(&scope, name, *q), *want, "{name} {q:?}");
        }
    }
}
