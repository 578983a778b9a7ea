//! DynamoDB's requests and answers as typed documents, members named as DynamoDB's model names
//! them. DynamoDB's inputs and outputs are JSON documents of `AttributeValue`s, whose wire form
//! this crate already owns ([`WireValue`], `AttributeValue`'s `Serialize`), so the typed inputs
//! and outputs live beside the service; `nimbus-api` places a request on its operation, checks
//! it against the model and decodes it into these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::{Item, WireValue};

/// An item or key as it came off the wire.
pub type WireItem = BTreeMap<String, WireValue>;

/// `AttributeDefinition`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    /// AttributeName.
    pub attribute_name: String,
    /// AttributeType (`S`, `N`, `B`).
    pub attribute_type: String,
}

/// `KeySchemaElement`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    /// AttributeName.
    pub attribute_name: String,
    /// KeyType (`HASH`, `RANGE`).
    pub key_type: String,
}

/// `Projection`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionInput {
    /// ProjectionType.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection_type: Option<String>,
    /// NonKeyAttributes (INCLUDE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_key_attributes: Option<Vec<String>>,
}

/// `ProvisionedThroughput`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedThroughput {
    /// ReadCapacityUnits.
    pub read_capacity_units: i64,
    /// WriteCapacityUnits.
    pub write_capacity_units: i64,
}

/// A GlobalSecondaryIndex or LocalSecondaryIndex of CreateTable (and UpdateTable's Create).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInput {
    /// IndexName.
    pub index_name: String,
    /// KeySchema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Projection.
    pub projection: ProjectionInput,
    /// ProvisionedThroughput (GSIs).
    pub provisioned_throughput: Option<ProvisionedThroughput>,
}

/// `StreamSpecification`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// StreamEnabled.
    pub stream_enabled: bool,
    /// StreamViewType.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_view_type: Option<String>,
}

/// `Tag`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// CreateTable.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTableInput {
    /// TableName.
    pub table_name: String,
    /// AttributeDefinitions.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// KeySchema.
    pub key_schema: Vec<KeySchemaElement>,
    /// LocalSecondaryIndexes.
    pub local_secondary_indexes: Option<Vec<IndexInput>>,
    /// GlobalSecondaryIndexes.
    pub global_secondary_indexes: Option<Vec<IndexInput>>,
    /// BillingMode.
    pub billing_mode: Option<String>,
    /// ProvisionedThroughput.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// StreamSpecification.
    pub stream_specification: Option<StreamSpecification>,
    /// Tags.
    pub tags: Option<Vec<Tag>>,
    /// DeletionProtectionEnabled.
    pub deletion_protection_enabled: Option<bool>,
}

/// DescribeTable, DeleteTable, DescribeTimeToLive.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableNameInput {
    /// TableName.
    pub table_name: String,
}

/// ListTables.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTablesInput {
    /// ExclusiveStartTableName.
    pub exclusive_start_table_name: Option<String>,
    /// Limit (1 to 100).
    pub limit: Option<i64>,
}

/// One of UpdateTable's GlobalSecondaryIndexUpdates.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiUpdate {
    /// Create.
    pub create: Option<IndexInput>,
    /// Delete.
    pub delete: Option<IndexNameOnly>,
    /// Update (capacity).
    pub update: Option<GsiCapacityUpdate>,
}

/// `{IndexName}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexNameOnly {
    /// IndexName.
    pub index_name: String,
}

/// UpdateGlobalSecondaryIndexAction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiCapacityUpdate {
    /// IndexName.
    pub index_name: String,
    /// ProvisionedThroughput.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
}

/// UpdateTable.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTableInput {
    /// TableName.
    pub table_name: String,
    /// AttributeDefinitions (for new GSIs).
    pub attribute_definitions: Option<Vec<AttributeDefinition>>,
    /// BillingMode.
    pub billing_mode: Option<String>,
    /// ProvisionedThroughput.
    pub provisioned_throughput: Option<ProvisionedThroughput>,
    /// GlobalSecondaryIndexUpdates.
    pub global_secondary_index_updates: Option<Vec<GsiUpdate>>,
    /// StreamSpecification.
    pub stream_specification: Option<StreamSpecification>,
    /// DeletionProtectionEnabled.
    pub deletion_protection_enabled: Option<bool>,
}

/// `TimeToLiveSpecification`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLiveSpecification {
    /// Enabled.
    pub enabled: bool,
    /// AttributeName.
    pub attribute_name: String,
}

/// UpdateTimeToLive.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTimeToLiveInput {
    /// TableName.
    pub table_name: String,
    /// TimeToLiveSpecification.
    pub time_to_live_specification: TimeToLiveSpecification,
}

/// The expression parameters every item operation may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpressionParams {
    /// ExpressionAttributeNames.
    pub expression_attribute_names: Option<BTreeMap<String, String>>,
    /// ExpressionAttributeValues.
    pub expression_attribute_values: Option<BTreeMap<String, WireValue>>,
}

/// Parameters of DynamoDB's legacy API (before expressions), kept as JSON: the service checks
/// them with DynamoDB's texts and translates them into expressions (`legacy.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyParams {
    /// Expected.
    pub expected: Option<serde_json::Value>,
    /// AttributesToGet.
    pub attributes_to_get: Option<serde_json::Value>,
    /// AttributeUpdates.
    pub attribute_updates: Option<serde_json::Value>,
    /// KeyConditions.
    pub key_conditions: Option<serde_json::Value>,
    /// QueryFilter.
    pub query_filter: Option<serde_json::Value>,
    /// ScanFilter.
    pub scan_filter: Option<serde_json::Value>,
    /// ConditionalOperator.
    pub conditional_operator: Option<serde_json::Value>,
}

/// PutItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutItemInput {
    /// TableName.
    pub table_name: String,
    /// Item.
    pub item: WireItem,
    /// ConditionExpression.
    pub condition_expression: Option<String>,
    /// Names and values.
    #[serde(flatten)]
    pub params: ExpressionParams,
    /// ReturnValues.
    pub return_values: Option<String>,
    /// ReturnValuesOnConditionCheckFailure.
    pub return_values_on_condition_check_failure: Option<String>,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// GetItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemInput {
    /// TableName.
    pub table_name: String,
    /// Key.
    pub key: WireItem,
    /// ProjectionExpression.
    pub projection_expression: Option<String>,
    /// ExpressionAttributeNames.
    pub expression_attribute_names: Option<BTreeMap<String, String>>,
    /// ConsistentRead (every read is consistent).
    pub consistent_read: Option<bool>,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// UpdateItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateItemInput {
    /// TableName.
    pub table_name: String,
    /// Key.
    pub key: WireItem,
    /// UpdateExpression.
    pub update_expression: Option<String>,
    /// ConditionExpression.
    pub condition_expression: Option<String>,
    /// Names and values.
    #[serde(flatten)]
    pub params: ExpressionParams,
    /// ReturnValues.
    pub return_values: Option<String>,
    /// ReturnValuesOnConditionCheckFailure.
    pub return_values_on_condition_check_failure: Option<String>,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// DeleteItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItemInput {
    /// TableName.
    pub table_name: String,
    /// Key.
    pub key: WireItem,
    /// ConditionExpression.
    pub condition_expression: Option<String>,
    /// Names and values.
    #[serde(flatten)]
    pub params: ExpressionParams,
    /// ReturnValues.
    pub return_values: Option<String>,
    /// ReturnValuesOnConditionCheckFailure.
    pub return_values_on_condition_check_failure: Option<String>,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// Query and Scan.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadInput {
    /// TableName.
    pub table_name: String,
    /// IndexName.
    pub index_name: Option<String>,
    /// Select.
    pub select: Option<String>,
    /// Limit.
    pub limit: Option<i64>,
    /// ConsistentRead.
    pub consistent_read: Option<bool>,
    /// ScanIndexForward (Query).
    pub scan_index_forward: Option<bool>,
    /// ExclusiveStartKey.
    pub exclusive_start_key: Option<WireItem>,
    /// KeyConditionExpression (Query).
    pub key_condition_expression: Option<String>,
    /// FilterExpression.
    pub filter_expression: Option<String>,
    /// ProjectionExpression.
    pub projection_expression: Option<String>,
    /// Segment (Scan).
    pub segment: Option<i64>,
    /// TotalSegments (Scan).
    pub total_segments: Option<i64>,
    /// Names and values.
    #[serde(flatten)]
    pub params: ExpressionParams,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// One table's keys in BatchGetItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeysAndAttributes {
    /// Keys.
    pub keys: Vec<WireItem>,
    /// ProjectionExpression.
    pub projection_expression: Option<String>,
    /// ExpressionAttributeNames.
    pub expression_attribute_names: Option<BTreeMap<String, String>>,
    /// ConsistentRead.
    pub consistent_read: Option<bool>,
    /// Legacy parameters.
    #[serde(flatten)]
    pub legacy: LegacyParams,
}

/// BatchGetItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetItemInput {
    /// RequestItems.
    pub request_items: BTreeMap<String, KeysAndAttributes>,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// `{Item}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    /// Item.
    pub item: WireItem,
}

/// `{Key}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    /// Key.
    pub key: WireItem,
}

/// A WriteRequest: exactly one of its members.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WriteRequest {
    /// PutRequest.
    pub put_request: Option<PutRequest>,
    /// DeleteRequest.
    pub delete_request: Option<DeleteRequest>,
}

/// BatchWriteItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchWriteItemInput {
    /// RequestItems.
    pub request_items: BTreeMap<String, Vec<WriteRequest>>,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// ConditionCheck, Put, Delete or Update in a transaction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactEntry {
    /// TableName.
    pub table_name: String,
    /// Key (ConditionCheck, Delete, Update).
    pub key: Option<WireItem>,
    /// Item (Put).
    pub item: Option<WireItem>,
    /// UpdateExpression (Update).
    pub update_expression: Option<String>,
    /// ConditionExpression.
    pub condition_expression: Option<String>,
    /// Names and values.
    #[serde(flatten)]
    pub params: ExpressionParams,
    /// ReturnValuesOnConditionCheckFailure.
    pub return_values_on_condition_check_failure: Option<String>,
}

/// One TransactWriteItem: exactly one of its members.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteItem {
    /// ConditionCheck.
    pub condition_check: Option<TransactEntry>,
    /// Put.
    pub put: Option<TransactEntry>,
    /// Delete.
    pub delete: Option<TransactEntry>,
    /// Update.
    pub update: Option<TransactEntry>,
}

/// TransactWriteItems.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteItemsInput {
    /// TransactItems.
    pub transact_items: Vec<TransactWriteItem>,
    /// ClientRequestToken (accepted; not used for idempotency yet).
    pub client_request_token: Option<String>,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

/// `Get` of TransactGetItems.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGet {
    /// TableName.
    pub table_name: String,
    /// Key.
    pub key: WireItem,
    /// ProjectionExpression.
    pub projection_expression: Option<String>,
    /// ExpressionAttributeNames.
    pub expression_attribute_names: Option<BTreeMap<String, String>>,
}

/// One TransactGetItem.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetItem {
    /// Get.
    pub get: TransactGet,
}

/// TransactGetItems.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetItemsInput {
    /// TransactItems.
    pub transact_items: Vec<TransactGetItem>,
    /// ReturnConsumedCapacity (`NONE`, `TOTAL`, `INDEXES`).
    pub return_consumed_capacity: Option<String>,
}

// ---- outputs --------------------------------------------------------------------------

/// `BillingModeSummary`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingModeSummary {
    /// BillingMode.
    pub billing_mode: String,
    /// LastUpdateToPayPerRequestDateTime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_to_pay_per_request_date_time: Option<f64>,
}

/// `ProvisionedThroughputDescription`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThroughputDescription {
    /// NumberOfDecreasesToday.
    pub number_of_decreases_today: i64,
    /// ReadCapacityUnits.
    pub read_capacity_units: i64,
    /// WriteCapacityUnits.
    pub write_capacity_units: i64,
}

/// A GlobalSecondaryIndexDescription or LocalSecondaryIndexDescription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDescription {
    /// IndexName.
    pub index_name: String,
    /// KeySchema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Projection.
    pub projection: ProjectionInput,
    /// IndexStatus (GSIs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_status: Option<String>,
    /// ProvisionedThroughput (GSIs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_throughput: Option<ThroughputDescription>,
    /// IndexSizeBytes.
    pub index_size_bytes: i64,
    /// ItemCount.
    pub item_count: i64,
    /// IndexArn.
    pub index_arn: String,
}

/// `TableDescription`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDescription {
    /// AttributeDefinitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_definitions: Option<Vec<AttributeDefinition>>,
    /// TableName.
    pub table_name: String,
    /// KeySchema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_schema: Option<Vec<KeySchemaElement>>,
    /// TableStatus.
    pub table_status: String,
    /// CreationDateTime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date_time: Option<f64>,
    /// ProvisionedThroughput.
    pub provisioned_throughput: ThroughputDescription,
    /// TableSizeBytes.
    pub table_size_bytes: i64,
    /// ItemCount.
    pub item_count: i64,
    /// TableArn.
    pub table_arn: String,
    /// TableId.
    pub table_id: String,
    /// BillingModeSummary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_mode_summary: Option<BillingModeSummary>,
    /// LocalSecondaryIndexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_secondary_indexes: Option<Vec<IndexDescription>>,
    /// GlobalSecondaryIndexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_secondary_indexes: Option<Vec<IndexDescription>>,
    /// StreamSpecification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_specification: Option<StreamSpecification>,
    /// LatestStreamLabel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_stream_label: Option<String>,
    /// LatestStreamArn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_stream_arn: Option<String>,
    /// DeletionProtectionEnabled.
    pub deletion_protection_enabled: bool,
}

/// `{TableDescription}` (CreateTable, UpdateTable, DeleteTable).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDescriptionOutput {
    /// TableDescription.
    pub table_description: TableDescription,
}

/// DescribeTable's `{Table}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTableOutput {
    /// Table.
    pub table: TableDescription,
}

/// ListTables.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTablesOutput {
    /// TableNames.
    pub table_names: Vec<String>,
    /// LastEvaluatedTableName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_table_name: Option<String>,
}

/// UpdateTimeToLive.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTimeToLiveOutput {
    /// TimeToLiveSpecification.
    pub time_to_live_specification: TimeToLiveSpecification,
}

/// `TimeToLiveDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLiveDescription {
    /// TimeToLiveStatus (`ENABLED`, `DISABLED`).
    pub time_to_live_status: String,
    /// AttributeName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<String>,
}

/// DescribeTimeToLive.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTimeToLiveOutput {
    /// TimeToLiveDescription.
    pub time_to_live_description: TimeToLiveDescription,
}

/// PutItem, UpdateItem, DeleteItem: `Attributes` when ReturnValues asked for them.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributesOutput {
    /// Attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Item>,
    /// ConsumedCapacity (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<ConsumedCapacity>,
}

/// GetItem: `Item` when it exists.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemOutput {
    /// Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
    /// ConsumedCapacity (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<ConsumedCapacity>,
}

/// Query and Scan.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadOutput {
    /// Items (absent with `Select: COUNT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Item>>,
    /// Count: items after the filter.
    pub count: i64,
    /// ScannedCount: items read before the filter.
    pub scanned_count: i64,
    /// LastEvaluatedKey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_key: Option<Item>,
    /// ConsumedCapacity (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<ConsumedCapacity>,
}

/// BatchGetItem.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetItemOutput {
    /// Responses, by table.
    pub responses: BTreeMap<String, Vec<Item>>,
    /// UnprocessedKeys (always empty: every key is read).
    pub unprocessed_keys: BTreeMap<String, serde_json::Value>,
    /// ConsumedCapacity, one per table (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// BatchWriteItem.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchWriteItemOutput {
    /// UnprocessedItems (always empty: every request is written).
    pub unprocessed_items: BTreeMap<String, serde_json::Value>,
    /// ConsumedCapacity, one per table (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// `ItemResponse`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemResponse {
    /// Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
}

/// TransactGetItems.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetItemsOutput {
    /// Responses, in request order.
    pub responses: Vec<ItemResponse>,
    /// ConsumedCapacity, one per table (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// An empty answer (TagResource, UntagResource).
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

/// TransactWriteItems.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteItemsOutput {
    /// ConsumedCapacity, one per table (with ReturnConsumedCapacity `TOTAL` or `INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_capacity: Option<Vec<ConsumedCapacity>>,
}

/// `Capacity`: the units used on a table or an index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capacity {
    /// CapacityUnits.
    pub capacity_units: f64,
    /// ReadCapacityUnits (transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_capacity_units: Option<f64>,
    /// WriteCapacityUnits (transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_capacity_units: Option<f64>,
}

/// `ConsumedCapacity`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumedCapacity {
    /// TableName.
    pub table_name: String,
    /// CapacityUnits: the table's and its indexes' together.
    pub capacity_units: f64,
    /// ReadCapacityUnits (transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_capacity_units: Option<f64>,
    /// WriteCapacityUnits (transactions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_capacity_units: Option<f64>,
    /// Table (`INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Capacity>,
    /// LocalSecondaryIndexes (`INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_secondary_indexes: Option<BTreeMap<String, Capacity>>,
    /// GlobalSecondaryIndexes (`INDEXES`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_secondary_indexes: Option<BTreeMap<String, Capacity>>,
}

// ---- tags, backups, limits, endpoints -------------------------------------------------

/// TagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    /// ResourceArn (a table's ARN).
    pub resource_arn: String,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// UntagResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    /// ResourceArn (a table's ARN).
    pub resource_arn: String,
    /// TagKeys.
    pub tag_keys: Vec<String>,
}

/// ListTagsOfResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOfResourceInput {
    /// ResourceArn (a table's ARN).
    pub resource_arn: String,
    /// NextToken (a position in the table's tags, as a previous page gave it).
    pub next_token: Option<String>,
}

/// ListTagsOfResource's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOfResourceOutput {
    /// Tags, by key.
    pub tags: Vec<Tag>,
    /// NextToken, when more tags follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// DescribeContinuousBackups (TableName: a name or a table ARN).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeContinuousBackupsInput {
    /// TableName.
    pub table_name: String,
}

/// `PointInTimeRecoverySpecification`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointInTimeRecoverySpecification {
    /// PointInTimeRecoveryEnabled.
    pub point_in_time_recovery_enabled: bool,
    /// RecoveryPeriodInDays (1 to 35; 35 when not given).
    pub recovery_period_in_days: Option<i64>,
}

/// UpdateContinuousBackups.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateContinuousBackupsInput {
    /// TableName (a name or a table ARN).
    pub table_name: String,
    /// PointInTimeRecoverySpecification.
    pub point_in_time_recovery_specification: PointInTimeRecoverySpecification,
}

/// `PointInTimeRecoveryDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointInTimeRecoveryDescription {
    /// PointInTimeRecoveryStatus (`ENABLED`, `DISABLED`).
    pub point_in_time_recovery_status: String,
    /// RecoveryPeriodInDays (when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_period_in_days: Option<i64>,
    /// EarliestRestorableDateTime (when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_restorable_date_time: Option<f64>,
    /// LatestRestorableDateTime (when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_restorable_date_time: Option<f64>,
}

/// `ContinuousBackupsDescription`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContinuousBackupsDescription {
    /// ContinuousBackupsStatus (always `ENABLED`, as on AWS).
    pub continuous_backups_status: String,
    /// PointInTimeRecoveryDescription.
    pub point_in_time_recovery_description: PointInTimeRecoveryDescription,
}

/// DescribeContinuousBackups' and UpdateContinuousBackups' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContinuousBackupsOutput {
    /// ContinuousBackupsDescription.
    pub continuous_backups_description: ContinuousBackupsDescription,
}

/// DescribeLimits' answer: AWS's default account quotas.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    /// AccountMaxReadCapacityUnits.
    pub account_max_read_capacity_units: i64,
    /// AccountMaxWriteCapacityUnits.
    pub account_max_write_capacity_units: i64,
    /// TableMaxReadCapacityUnits.
    pub table_max_read_capacity_units: i64,
    /// TableMaxWriteCapacityUnits.
    pub table_max_write_capacity_units: i64,
}

/// An input with no members (DescribeLimits, DescribeEndpoints).
#[derive(Debug, Default, Deserialize)]
pub struct NoInput {}

/// `Endpoint`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    /// Address.
    pub address: String,
    /// CachePeriodInMinutes.
    pub cache_period_in_minutes: i64,
}

/// DescribeEndpoints' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeEndpointsOutput {
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}
