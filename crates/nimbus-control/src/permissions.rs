//! Functions' resource-based policies (AddPermission, GetPolicy, RemovePermission): one
//! policy per qualifier, kept on `$LATEST` with its own revision id. Stored and reported as
//! AWS does; they are enforced once requests are signed (the identity work).

use nimbus_model::function::{new_revision_id, FunctionPolicy, PermissionStatement};
use nimbus_model::{ApiError, ErrorCode, FunctionConfig, Qualifier};

use crate::ControlPlane;

impl ControlPlane {
    /// The function's `$LATEST` and, for a qualifier, proof that it exists.
    async fn policy_target(&self, name: &str, qualifier: Option<&str>) -> Result<FunctionConfig, ApiError> {
        let latest = self.get(name).await?;
        if let Some(q) = qualifier {
            let q = Qualifier::parse(q)?;
            self.get_qualified(name, Some(&q)).await?;
        }
        Ok(latest)
    }

    fn check_policy_revision(policy: &FunctionPolicy, revision_id: Option<&str>) -> Result<(), ApiError> {
        match revision_id {
            Some(r) if r != policy.revision_id => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id",
            )),
            _ => Ok(()),
        }
    }

    /// AddPermission: the policy after adding `statement`.
    pub async fn add_permission(
        &self,
        name: &str,
        qualifier: Option<&str>,
        statement: PermissionStatement,
        revision_id: Option<&str>,
    ) -> Result<FunctionPolicy, ApiError> {
        let current = self.policy_target(name, qualifier).await?;
        let key = qualifier.unwrap_or("").to_string();
        let mut policy = current.policies.get(&key).cloned().unwrap_or_default();
        Self::check_policy_revision(&policy, revision_id)?;
        if policy.statements.iter().any(|s| s.sid == statement.sid) {
            return Err(ApiError::conflict(format!(
                "The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.",
                statement.sid
            )));
        }
        policy.statements.push(statement);
        policy.revision_id = new_revision_id();
        let mut next = current.clone();
        next.policies.insert(key, policy.clone());
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next).await?);
        Ok(policy)
    }

    /// The policy of the function `name` (or of its `qualifier`) as authorization reads it on
    /// every call: from the in-memory view, not the store. None when it has none.
    pub async fn policy_in_force(&self, name: &str, qualifier: Option<&str>) -> Option<FunctionPolicy> {
        let latest = self.resolve_version(name, nimbus_model::LATEST).await.ok()?;
        latest.config.policies.get(qualifier.unwrap_or("")).filter(|p| !p.statements.is_empty()).cloned()
    }

    /// GetPolicy: AWS answers a missing function and a missing policy alike.
    pub async fn get_policy(&self, name: &str, qualifier: Option<&str>) -> Result<FunctionPolicy, ApiError> {
        let missing = || ApiError::not_found("The resource you requested does not exist.");
        let current =
            self.policy_target(name, qualifier).await.map_err(|e| if e.code == ErrorCode::ResourceNotFound { missing() } else { e })?;
        current.policies.get(qualifier.unwrap_or("")).filter(|p| !p.statements.is_empty()).cloned().ok_or_else(missing)
    }

    /// RemovePermission.
    pub async fn remove_permission(
        &self,
        name: &str,
        qualifier: Option<&str>,
        sid: &str,
        revision_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let current = self.policy_target(name, qualifier).await.map_err(|e| {
            if e.code == ErrorCode::ResourceNotFound {
                let arn = match qualifier {
                    Some(q) => self.partition.qualified_arn(name, q),
                    None => self.partition.function_arn(name),
                };
                ApiError::not_found(format!("No policy found for: {arn}"))
            } else {
                e
            }
        })?;
        let key = qualifier.unwrap_or("").to_string();
        let mut policy = current.policies.get(&key).cloned().unwrap_or_default();
        Self::check_policy_revision(&policy, revision_id)?;
        let before = policy.statements.len();
        policy.statements.retain(|s| s.sid != sid);
        if policy.statements.len() == before {
            return Err(ApiError::not_found(format!("Statement {sid} is not found in resource policy.")));
        }
        policy.revision_id = new_revision_id();
        let mut next = current.clone();
        if policy.statements.is_empty() {
            next.policies.remove(&key);
        } else {
            next.policies.insert(key, policy);
        }
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next).await?);
        Ok(())
    }

    /// PutResourcePolicy: the qualifier's policy becomes `statements` (checked against the
    /// revision the caller read, if given).
    pub async fn replace_policy(
        &self,
        name: &str,
        qualifier: Option<&str>,
        statements: Vec<PermissionStatement>,
        revision_id: Option<&str>,
    ) -> Result<FunctionPolicy, ApiError> {
        let current = self.policy_target(name, qualifier).await?;
        let key = qualifier.unwrap_or("").to_string();
        Self::check_policy_revision(&current.policies.get(&key).cloned().unwrap_or_default(), revision_id)?;
        let mut sids: Vec<&str> = statements.iter().map(|s| s.sid.as_str()).collect();
        sids.sort_unstable();
        if let Some(w) = sids.windows(2).find(|w| w[0] == w[1]) {
            return Err(ApiError::invalid(format!("The statement id ({}) is used by more than one statement.", w[0])));
        }
        let policy = FunctionPolicy { statements, revision_id: new_revision_id() };
        let mut next = current.clone();
        next.policies.insert(key, policy.clone());
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next).await?);
        Ok(policy)
    }

    /// DeleteResourcePolicy: removes the qualifier's whole policy.
    pub async fn delete_policy(&self, name: &str, qualifier: Option<&str>, revision_id: Option<&str>) -> Result<(), ApiError> {
        let current = self.policy_target(name, qualifier).await?;
        let key = qualifier.unwrap_or("");
        let Some(policy) = current.policies.get(key) else {
            return Err(ApiError::not_found("The resource you requested does not exist."));
        };
        Self::check_policy_revision(policy, revision_id)?;
        let mut next = current.clone();
        next.policies.remove(key);
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next).await?);
        Ok(())
    }
}
