//! Lambda features Nimbus has not built yet: capacity providers (Lambda Managed Instances,
//! with their function scaling configs) and durable executions. Until they are, every one of
//! their operations answers as AWS does in an account that has none: a lookup by name or
//! ARN is not found, a list is empty (for a function that exists), and an operation that
//! would create one is refused with an error the model declares for it, saying so.

use nimbus_model::{ApiError, ErrorCode, FunctionRef, Partition};

use super::input::UnbuiltInput;

/// How an operation of an unbuilt feature is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// ResourceNotFoundException for the capacity provider named.
    NoCapacityProvider,
    /// ResourceNotFoundException for the durable execution named.
    NoDurableExecution,
    /// The same text, as InvalidParameterValueException (for operations whose model
    /// declares no ResourceNotFoundException).
    NoDurableExecutionState,
    /// ResourceNotFoundException for the callback named.
    NoCallback,
    /// The empty list.
    EmptyList,
    /// The empty list once the function is known to exist.
    EmptyListForFunction,
    /// The function must exist; then InvalidParameterValueException: it is on no
    /// capacity provider.
    NotOnCapacityProvider,
    /// InvalidParameterValueException: creating one is not supported yet.
    Unsupported,
}

/// Every operation of the unbuilt features and its answer.
pub const TABLE: &[(&str, Answer)] = &[
    ("CreateCapacityProvider", Answer::Unsupported),
    ("GetCapacityProvider", Answer::NoCapacityProvider),
    ("UpdateCapacityProvider", Answer::NoCapacityProvider),
    ("DeleteCapacityProvider", Answer::NoCapacityProvider),
    ("ListCapacityProviders", Answer::EmptyList),
    ("ListFunctionVersionsByCapacityProvider", Answer::NoCapacityProvider),
    ("GetFunctionScalingConfig", Answer::NotOnCapacityProvider),
    ("PutFunctionScalingConfig", Answer::NotOnCapacityProvider),
    ("GetDurableExecution", Answer::NoDurableExecution),
    ("GetDurableExecutionHistory", Answer::NoDurableExecution),
    ("GetDurableExecutionState", Answer::NoDurableExecutionState),
    ("CheckpointDurableExecution", Answer::NoDurableExecutionState),
    ("ListDurableExecutionsByFunction", Answer::EmptyListForFunction),
    ("StopDurableExecution", Answer::NoDurableExecution),
    ("PauseDurableExecution", Answer::NoDurableExecution),
    ("ResumeDurableExecution", Answer::NoDurableExecution),
    ("DeleteDurableExecution", Answer::NoDurableExecution),
    ("SendDurableExecutionCallbackSuccess", Answer::NoCallback),
    ("SendDurableExecutionCallbackFailure", Answer::NoCallback),
    ("SendDurableExecutionCallbackHeartbeat", Answer::NoCallback),
];

/// The answer for `operation` (every operation routed here is in the table).
pub fn answer_for(operation: &str) -> Answer {
    TABLE.iter().find(|(op, _)| *op == operation).map(|(_, a)| *a).unwrap_or(Answer::Unsupported)
}

/// What the caller gets: an error, or (for lists) the function to check first, if any.
pub enum Outcome {
    Error(ApiError),
    EmptyList {
        function: Option<FunctionRef>,
    },
    /// The function must exist; then this error.
    AfterFunction(FunctionRef, ApiError),
}

pub fn outcome(operation: &str, input: &UnbuiltInput, p: &Partition) -> Result<Outcome, ApiError> {
    let execution = || input.durable_execution_arn.clone().unwrap_or_default();
    let function = || FunctionRef::parse(input.function_name.as_deref().unwrap_or_default(), p);
    Ok(match answer_for(operation) {
        Answer::NoCapacityProvider => {
            let given = input.capacity_provider_name.as_deref().unwrap_or_default();
            let name = given.rsplit_once("capacity-provider:").map_or(given, |(_, n)| n);
            let arn = format!("arn:aws:lambda:{}:{}:capacity-provider:{name}", p.region, p.account_id);
            Outcome::Error(ApiError::not_found(format!("Capacity provider not found: {arn}")))
        }
        Answer::NoDurableExecution => Outcome::Error(ApiError::not_found(format!("Durable execution not found: {}", execution()))),
        Answer::NoDurableExecutionState => Outcome::Error(ApiError::invalid(format!("Durable execution not found: {}", execution()))),
        Answer::NoCallback => {
            Outcome::Error(ApiError::not_found(format!("Callback not found: {}", input.callback_id.as_deref().unwrap_or_default())))
        }
        Answer::EmptyList => Outcome::EmptyList { function: None },
        Answer::EmptyListForFunction => Outcome::EmptyList { function: Some(function()?) },
        Answer::NotOnCapacityProvider => {
            let f = function()?;
            let e = ApiError::invalid(format!(
                "The function {} does not use a capacity provider. Function scaling configs apply to functions on Lambda Managed Instances, which Nimbus does not support yet.",
                p.function_arn(&f.name)
            ));
            Outcome::AfterFunction(f, e)
        }
        Answer::Unsupported => Outcome::Error(ApiError::new(
            ErrorCode::InvalidParameterValue,
            "Nimbus does not support capacity providers (Lambda Managed Instances) yet.",
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the table is served (routed to it), and every answer names an
    /// error its operation's model declares.
    #[test]
    fn the_table_matches_the_model() {
        let model = nimbus_protocol::LAMBDA.model();
        for (op, answer) in TABLE {
            assert!(super::super::LambdaCall::OPERATIONS.contains(op), "{op} is not served");
            let declared: Vec<&str> = model.operation(op).expect("modelled").errors.iter().map(|e| e.shape.as_str()).collect();
            let needs = match answer {
                Answer::NoCapacityProvider | Answer::NoDurableExecution | Answer::NoCallback => Some("ResourceNotFoundException"),
                Answer::EmptyListForFunction => Some("ResourceNotFoundException"),
                Answer::NoDurableExecutionState | Answer::Unsupported => Some("InvalidParameterValueException"),
                Answer::NotOnCapacityProvider => Some("InvalidParameterValueException"),
                Answer::EmptyList => None,
            };
            if let Some(e) = needs {
                assert!(declared.contains(&e), "{op} does not declare {e}: {declared:?}");
            }
        }
    }

    #[test]
    fn capacity_provider_names_or_arns() {
        let p = Partition { region: "us-east-1".into(), account_id: "000000000000".into() };
        for given in ["cp1", "arn:aws:lambda:us-east-1:000000000000:capacity-provider:cp1"] {
            let input = UnbuiltInput {
                function_name: None,
                qualifier: None,
                capacity_provider_name: Some(given.into()),
                durable_execution_arn: None,
                callback_id: None,
            };
            let Ok(Outcome::Error(e)) = outcome("GetCapacityProvider", &input, &p) else { panic!("{given}") };
            assert_eq!(e.code, ErrorCode::ResourceNotFound);
            assert_eq!(e.message, "Capacity provider not found: arn:aws:lambda:us-east-1:000000000000:capacity-provider:cp1");
        }
    }
}
