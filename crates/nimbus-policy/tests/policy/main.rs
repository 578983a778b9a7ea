//! Table tests of the policy language against AWS's documented and recorded behaviour.

mod conditions;
mod evaluation;
mod validation;
