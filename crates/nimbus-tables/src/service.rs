//! The DynamoDB-compatible table service: DynamoDB's operations on typed inputs, with AWS's
//! checks and texts. Requests are checked and their expressions parsed before the store is
//! touched; everything that reads and writes a table then runs as one transaction of the
//! store (`in_tx!`: a job on `tables.db`'s writer thread, or a PostgreSQL transaction holding
//! what it writes, see `store::postgres`), so a condition and the write it guards are atomic,
//! a transaction is one database transaction, and every acknowledged write is durable
//! before the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::capacity::{per_table, read_units, CapacityMode, Tally, Usage};
use crate::error::{CancellationReason, TableError};
use crate::expr::{Condition, ExpressionKind, KeyCondition, Placeholders, Projection, SortCondition, Update, UpdateError};
use crate::legacy;
use crate::request::*;
use crate::schema::{
    check_name, key_bytes, EncodedKey, IndexDef, KeyAttr, KeySchema, KeyType, ProjectionType, StreamDef, TableDef, Throughput,
};
use crate::store::{self, in_read, in_tx, Db, Loaded, Origin, Range, Scan, Store, TableTx};
use crate::value::{check_item_size, item_from_wire, item_size, Item};

mod admin;
pub(crate) mod stream_reader;

/// Most bytes of items one Query or Scan page reads (AWS's 1 MB).
pub const PAGE_BYTES: usize = 1024 * 1024;
/// Most keys of one BatchGetItem.
pub const MAX_BATCH_GET: usize = 100;
/// Most requests of one BatchWriteItem.
pub const MAX_BATCH_WRITE: usize = 25;
/// Most entries of one transaction.
pub const MAX_TRANSACT: usize = 100;

/// The table service of one account.
pub struct TableService {
    db: Db,
    region: String,
    account: String,
    /// Signs DynamoDB Streams' shard iterators (a fresh key each run).
    stream_key: crate::streams::IteratorKey,
}

impl TableService {
    /// Woken after every committed write (a stream's poller waits on it while idle).
    pub fn changed(&self) -> std::sync::Arc<tokio::sync::Notify> {
        match &self.db {
            Db::Sqlite(store) => store.changed(),
            Db::Postgres(shared) => shared.changed(),
        }
    }
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

fn validation(text: impl Into<String>) -> TableError {
    TableError::Validation(text.into())
}

/// The expressions of one item write, parsed.
struct Guard {
    condition: Option<Condition>,
    return_item_on_failure: bool,
}

impl Guard {
    fn check(&self, old: Option<&Item>) -> Result<(), TableError> {
        let Some(condition) = &self.condition else { return Ok(()) };
        let empty = Item::new();
        if condition.evaluate(old.unwrap_or(&empty)) {
            return Ok(());
        }
        Err(TableError::ConditionalCheckFailed { item: old.filter(|_| self.return_item_on_failure).cloned() })
    }
}

fn return_on_failure(value: Option<&str>) -> Result<bool, TableError> {
    match value {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

/// A write's legacy `Expected` (with `ConditionalOperator`) as a condition, after DynamoDB's
/// refusal of a request that mixes them with `expressions` (the operation's expression
/// parameters) or carries placeholders without expressions.
fn legacy_expected(
    legacy: &LegacyParams,
    expressions: &[(&str, bool)],
    params: &ExpressionParams,
    attribute_updates: bool,
) -> Result<Option<Condition>, TableError> {
    let mut non_expression = Vec::new();
    if attribute_updates {
        non_expression.push(("AttributeUpdates", legacy.attribute_updates.is_some()));
    }
    non_expression.push(("Expected", legacy.expected.is_some()));
    non_expression.push(("ConditionalOperator", legacy.conditional_operator.is_some()));
    legacy::check_mixing(
        expressions,
        &non_expression,
        params.expression_attribute_names.is_some(),
        params.expression_attribute_values.is_some(),
    )?;
    let or = legacy::is_or(legacy.conditional_operator.as_ref())?;
    Ok(legacy.expected.as_ref().map(|e| legacy::expected(e, or)).transpose()?.flatten())
}

/// Parses a write's condition with its placeholders (checking none is unused).
fn guard(
    condition: Option<&str>,
    params: ExpressionParams,
    on_failure: Option<&str>,
    mut extra: impl FnMut(&mut Placeholders) -> Result<(), TableError>,
) -> Result<Guard, TableError> {
    let mut placeholders = Placeholders::from_wire(params.expression_attribute_names, params.expression_attribute_values)?;
    extra(&mut placeholders)?;
    let condition = condition.map(|c| Condition::parse(c, ExpressionKind::Condition, &mut placeholders)).transpose()?;
    placeholders.check_unused()?;
    Ok(Guard { condition, return_item_on_failure: return_on_failure(on_failure)? })
}

fn projection_of(text: Option<&str>, names: Option<BTreeMap<String, String>>) -> Result<Option<Projection>, TableError> {
    let mut placeholders = Placeholders::new(names, None)?;
    let projection = text.map(|t| Projection::parse(t, &mut placeholders)).transpose()?;
    placeholders.check_unused()?;
    Ok(projection)
}

fn project(projection: &Option<Projection>, item: Item) -> Item {
    match projection {
        Some(p) => p.apply(&item),
        None => item,
    }
}

fn wire_item(wire: WireItem) -> Result<Item, TableError> {
    Ok(item_from_wire(wire)?)
}

fn check_size(item: &Item) -> Result<(), TableError> {
    check_item_size(item).map_err(|e| validation(e.to_string()))
}

fn throughput_description(t: Option<Throughput>) -> ThroughputDescription {
    let t = t.unwrap_or(Throughput { read: 0, write: 0 });
    ThroughputDescription { number_of_decreases_today: 0, read_capacity_units: t.read, write_capacity_units: t.write }
}

fn key_schema_elements(key: &KeySchema) -> Vec<KeySchemaElement> {
    let mut out = vec![KeySchemaElement { attribute_name: key.hash.name.clone(), key_type: "HASH".into() }];
    if let Some(range) = &key.range {
        out.push(KeySchemaElement { attribute_name: range.name.clone(), key_type: "RANGE".into() });
    }
    out
}

fn projection_description(p: &ProjectionType) -> ProjectionInput {
    ProjectionInput {
        projection_type: Some(p.name().to_string()),
        non_key_attributes: match p {
            ProjectionType::Include(names) => Some(names.clone()),
            _ => None,
        },
    }
}

/// Reads a KeySchema parameter against the attribute definitions.
fn key_schema(elements: &[KeySchemaElement], defined: &[KeyAttr], member: &str) -> Result<KeySchema, TableError> {
    if elements.is_empty() || elements.len() > 2 {
        let bound = if elements.is_empty() { "greater than or equal to 1" } else { "less than or equal to 2" };
        return Err(validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    if elements[0].key_type != "HASH" {
        return Err(validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type"));
    }
    if elements.len() == 2 {
        if elements[1].key_type != "RANGE" {
            return Err(validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"));
        }
        if elements[0].attribute_name == elements[1].attribute_name {
            return Err(validation("Both the Hash Key and the Range Key element in the KeySchema have the same name"));
        }
    }
    let attr = |e: &KeySchemaElement| -> Result<KeyAttr, TableError> {
        let kind = defined.iter().find(|a| a.name == e.attribute_name).map(|a| a.kind).ok_or_else(|| {
            let keys: Vec<&str> = elements.iter().map(|e| e.attribute_name.as_str()).collect();
            let defs: Vec<&str> = defined.iter().map(|a| a.name.as_str()).collect();
            TableError::invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                keys.join(", "),
                defs.join(", ")
            ))
        })?;
        Ok(KeyAttr { name: e.attribute_name.clone(), kind })
    };
    Ok(KeySchema { hash: attr(&elements[0])?, range: elements.get(1).map(attr).transpose()? })
}

fn projection_type(p: &ProjectionInput) -> Result<ProjectionType, TableError> {
    match (p.projection_type.as_deref(), &p.non_key_attributes) {
        (Some("ALL"), None) => Ok(ProjectionType::All),
        (Some("KEYS_ONLY"), None) => Ok(ProjectionType::KeysOnly),
        (Some("INCLUDE"), Some(names)) if !names.is_empty() => Ok(ProjectionType::Include(names.clone())),
        (Some("INCLUDE"), _) => Err(TableError::invalid("ProjectionType is INCLUDE, but NonKeyAttributes is not specified")),
        (Some("ALL" | "KEYS_ONLY"), Some(_)) => {
            Err(TableError::invalid("ProjectionType is ALL or KEYS_ONLY, but NonKeyAttributes is specified"))
        }
        (None, _) => Err(TableError::invalid("Unknown ProjectionType: null")),
        (Some(other), _) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]"
        ))),
    }
}

fn throughput(t: Option<ProvisionedThroughput>) -> Option<Throughput> {
    t.map(|t| Throughput { read: t.read_capacity_units, write: t.write_capacity_units })
}

fn check_view_type(spec: &StreamSpecification) -> Result<Option<String>, TableError> {
    if !spec.stream_enabled {
        return Ok(None);
    }
    match spec.stream_view_type.as_deref() {
        Some(v @ ("NEW_IMAGE" | "OLD_IMAGE" | "NEW_AND_OLD_IMAGES" | "KEYS_ONLY")) => Ok(Some(v.to_string())),
        None => Err(validation("1 validation error detected: Value null at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must not be null")),
        Some(other) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]"
        ))),
    }
}

fn stream_label(at: f64) -> String {
    chrono::DateTime::from_timestamp_millis((at * 1000.0) as i64).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// The sort-key condition of a Query as a byte range.
fn sort_range(condition: &SortCondition) -> Range {
    let inc = |v| Some((key_bytes(v), true));
    let exc = |v| Some((key_bytes(v), false));
    match condition {
        SortCondition::Eq(v) => Range { lower: inc(v), upper: inc(v) },
        SortCondition::Lt(v) => Range { lower: None, upper: exc(v) },
        SortCondition::Le(v) => Range { lower: None, upper: inc(v) },
        SortCondition::Gt(v) => Range { lower: exc(v), upper: None },
        SortCondition::Ge(v) => Range { lower: inc(v), upper: None },
        SortCondition::Between(a, b) => Range { lower: inc(a), upper: inc(b) },
        SortCondition::BeginsWith(prefix) => {
            let low = key_bytes(prefix);
            // The first byte string past every string that starts with `low`.
            let mut high = low.clone();
            while high.last() == Some(&0xFF) {
                high.pop();
            }
            let upper = high.last_mut().map(|b| *b += 1).map(|_| (high, false));
            Range { lower: Some((low, true)), upper }
        }
    }
}

impl TableService {
    /// Opens the account's `tables.db`.
    pub fn open(path: &Path, region: &str, account: &str) -> Result<Arc<TableService>, TableError> {
        Ok(TableService::with_db(Db::Sqlite(Store::open(path)?), region, account))
    }

    /// The service on the account's tables in a PostgreSQL database several nodes share.
    pub async fn open_shared(url: &str, region: &str, account: &str) -> Result<Arc<TableService>, TableError> {
        Ok(TableService::with_db(Db::Postgres(store::postgres::SharedTables::open(url, account).await?), region, account))
    }

    /// A service on an in-memory database (tests).
    pub fn in_memory(region: &str, account: &str) -> Result<Arc<TableService>, TableError> {
        Ok(TableService::with_db(Db::Sqlite(Store::in_memory()?), region, account))
    }

    fn with_db(db: Db, region: &str, account: &str) -> Arc<TableService> {
        Arc::new(TableService { db, region: region.into(), account: account.into(), stream_key: crate::streams::IteratorKey::generate() })
    }

    /// `arn:aws:dynamodb:<region>:<account>:table/<name>`.
    pub fn table_arn(&self, name: &str) -> String {
        format!("arn:aws:dynamodb:{}:{}:table/{name}", self.region, self.account)
    }

    async fn describe(&self, tx: &mut impl TableTx, table: &Loaded, status: &str) -> Result<TableDescription, TableError> {
        let def = &table.def;
        let (count, size) = tx.table_stats(table.id).await?;
        let arn = self.table_arn(&def.name);
        let mut counts = BTreeMap::new();
        for i in def.indexes() {
            counts.insert(i.name.clone(), tx.index_count(table.id, &i.name).await?);
        }
        let index = |i: &IndexDef, global: bool| IndexDescription {
            index_name: i.name.clone(),
            key_schema: key_schema_elements(&i.key),
            projection: projection_description(&i.projection),
            index_status: global.then(|| "ACTIVE".to_string()),
            provisioned_throughput: global.then(|| throughput_description(i.throughput)),
            index_size_bytes: 0,
            item_count: counts.get(&i.name).copied().unwrap_or(0),
            index_arn: format!("{arn}/index/{}", i.name),
        };
        let globals: Vec<_> = def.global_indexes.iter().map(|i| index(i, true)).collect();
        let locals: Vec<_> = def.local_indexes.iter().map(|i| index(i, false)).collect();
        let stream = def.live_stream();
        Ok(TableDescription {
            attribute_definitions: Some(
                def.attributes
                    .iter()
                    .map(|a| AttributeDefinition { attribute_name: a.name.clone(), attribute_type: a.kind.name().into() })
                    .collect(),
            ),
            table_name: def.name.clone(),
            key_schema: Some(key_schema_elements(&def.key)),
            table_status: status.into(),
            creation_date_time: Some(def.created_at),
            provisioned_throughput: throughput_description(def.throughput),
            table_size_bytes: size,
            item_count: count,
            table_arn: arn.clone(),
            table_id: def.table_id.clone(),
            billing_mode_summary: def.throughput.is_none().then(|| BillingModeSummary {
                billing_mode: "PAY_PER_REQUEST".into(),
                last_update_to_pay_per_request_date_time: def.pay_per_request_since,
            }),
            local_secondary_indexes: (!locals.is_empty()).then_some(locals),
            global_secondary_indexes: (!globals.is_empty()).then_some(globals),
            stream_specification: stream.map(|s| StreamSpecification { stream_enabled: true, stream_view_type: Some(s.view_type.clone()) }),
            latest_stream_label: def.stream.as_ref().map(|s| s.label.clone()),
            latest_stream_arn: def.stream.as_ref().map(|s| format!("{arn}/stream/{}", s.label)),
            deletion_protection_enabled: def.deletion_protection,
        })
    }

    // ---- tables ---------------------------------------------------------------------------

    /// CreateTable.
    pub async fn create_table(self: &Arc<Self>, input: CreateTableInput) -> Result<TableDescriptionOutput, TableError> {
        check_name(&input.table_name, "tableName")?;
        let mut attributes = Vec::new();
        for (i, a) in input.attribute_definitions.iter().enumerate() {
            attributes.push(KeyAttr { name: a.attribute_name.clone(), kind: KeyType::parse(&a.attribute_type, i + 1)? });
        }
        let key = key_schema(&input.key_schema, &attributes, "keySchema")?;
        let mut used: BTreeSet<&str> = key.names().into_iter().collect();
        let mut global_indexes = Vec::new();
        let mut local_indexes = Vec::new();
        let mut names = BTreeSet::new();
        for (global, list) in [(true, &input.global_secondary_indexes), (false, &input.local_secondary_indexes)] {
            for i in list.iter().flatten() {
                check_name(&i.index_name, "indexName")?;
                if !names.insert(i.index_name.clone()) {
                    return Err(TableError::invalid(format!("Duplicate index name: {}", i.index_name)));
                }
                let index_key = key_schema(&i.key_schema, &attributes, "keySchema")?;
                if !global {
                    if key.range.is_none() {
                        return Err(TableError::invalid(
                            "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                        ));
                    }
                    if index_key.hash != key.hash || index_key.range.is_none() {
                        return Err(TableError::invalid(format!(
                            "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                            i.index_name, index_key.hash.name, key.hash.name
                        )));
                    }
                }
                let def = IndexDef {
                    name: i.index_name.clone(),
                    key: index_key,
                    projection: projection_type(&i.projection)?,
                    throughput: throughput(i.provisioned_throughput),
                };
                if global {
                    global_indexes.push(def);
                } else {
                    local_indexes.push(def);
                }
            }
        }
        for index in global_indexes.iter().chain(&local_indexes) {
            used.extend(index.key.names());
        }
        if used.len() != attributes.len() {
            return Err(TableError::invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let throughput = match input.billing_mode.as_deref() {
            None | Some("PROVISIONED") => match input.provisioned_throughput {
                Some(t) => Some(Throughput { read: t.read_capacity_units, write: t.write_capacity_units }),
                None => {
                    return Err(TableError::invalid(
                        "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                    ))
                }
            },
            Some("PAY_PER_REQUEST") => {
                if input.provisioned_throughput.is_some() {
                    return Err(TableError::invalid(
                        "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                    ));
                }
                None
            }
            Some(other) => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
                )))
            }
        };
        if throughput.is_some() {
            if let Some(i) = global_indexes.iter().find(|i| i.throughput.is_none()) {
                return Err(TableError::invalid(format!("ProvisionedThroughput is not specified for index: {}", i.name)));
            }
        }
        let view_type = input.stream_specification.as_ref().map(check_view_type).transpose()?.flatten();
        let created_at = now();
        let mut def = TableDef {
            name: input.table_name.clone(),
            table_id: uuid::Uuid::new_v4().to_string(),
            created_at,
            attributes,
            key,
            global_indexes,
            local_indexes,
            throughput,
            pay_per_request_since: None,
            stream: None,
            ttl_attribute: None,
            deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
            tags: admin::merge_tags(&BTreeMap::new(), input.tags.as_deref().unwrap_or_default())?,
            point_in_time_recovery: None,
        };
        let this = self.clone();
        in_tx!(&self.db, true, |tx| {
            if tx.find_table(&def.name).await?.is_some() {
                return Err(TableError::InUse(format!("Table already exists: {}", def.name)));
            }
            if let Some(view_type) = view_type {
                let label = stream_label(created_at);
                let arn = format!("{}/stream/{label}", this.table_arn(&def.name));
                let id = tx.insert_stream(&def.name, &arn, &view_type, &def.key, created_at).await?;
                def.stream = Some(StreamDef { id, view_type, label, enabled: true });
            }
            let id = tx.insert_table(&def).await?;
            Ok(TableDescriptionOutput { table_description: this.describe(tx, &Loaded { id, def }, "CREATING").await? })
        })
    }

    /// DescribeTable.
    pub async fn describe_table(self: &Arc<Self>, name: String) -> Result<DescribeTableOutput, TableError> {
        let this = self.clone();
        in_read!(&self.db, false, |tx| {
            let table = tx.find_table(&name).await?.ok_or_else(|| TableError::no_such_table(&name))?;
            Ok(DescribeTableOutput { table: this.describe(tx, &table, "ACTIVE").await? })
        })
    }

    /// The definition of a table (for callers inside Nimbus), if it exists.
    pub async fn table_def(&self, name: &str) -> Result<Option<TableDef>, TableError> {
        let name = name.to_string();
        in_tx!(&self.db, false, |tx| Ok(tx.find_table(&name).await?.map(|t| t.def)))
    }

    /// ListTables.
    pub async fn list_tables(&self, input: ListTablesInput) -> Result<ListTablesOutput, TableError> {
        let limit = input.limit.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            let bound = if limit < 1 { "greater than or equal to 1" } else { "less than or equal to 100" };
            return Err(validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
        let names = in_tx!(&self.db, false, |tx| tx.table_names().await)?;
        let rest: Vec<String> = names
            .into_iter()
            .filter(|n| input.exclusive_start_table_name.as_ref().is_none_or(|start| n.as_str() > start.as_str()))
            .collect();
        let more = rest.len() > limit as usize;
        let page: Vec<String> = rest.into_iter().take(limit as usize).collect();
        Ok(ListTablesOutput { last_evaluated_table_name: if more { page.last().cloned() } else { None }, table_names: page })
    }

    /// DeleteTable.
    pub async fn delete_table(self: &Arc<Self>, name: String) -> Result<TableDescriptionOutput, TableError> {
        let this = self.clone();
        in_tx!(&self.db, true, |tx| {
            let table = tx.find_table_for_change(&name).await?.ok_or_else(|| TableError::no_such_table(&name))?;
            if table.def.deletion_protection {
                return Err(validation(
                    "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
                ));
            }
            let mut description = this.describe(tx, &table, "DELETING").await?;
            description.attribute_definitions = None;
            description.key_schema = None;
            description.creation_date_time = None;
            if let Some(stream) = &table.def.stream {
                tx.disable_stream(stream.id, now()).await?;
            }
            tx.delete_table(table.id).await?;
            Ok(TableDescriptionOutput { table_description: description })
        })
    }

    /// UpdateTable: billing, capacity, streams, GSIs created and deleted, deletion protection.
    pub async fn update_table(self: &Arc<Self>, input: UpdateTableInput) -> Result<TableDescriptionOutput, TableError> {
        let this = self.clone();
        let view_type = input.stream_specification.as_ref().map(check_view_type).transpose()?;
        in_tx!(&self.db, true, |tx| {
            let mut table =
                tx.find_table_for_change(&input.table_name).await?.ok_or_else(|| TableError::no_such_table(&input.table_name))?;
            let at = now();
            let def = &mut table.def;
            for (i, a) in input.attribute_definitions.iter().flatten().enumerate() {
                let kind = KeyType::parse(&a.attribute_type, i + 1)?;
                match def.attribute_type(&a.attribute_name) {
                    Some(k) if k != kind => {
                        return Err(TableError::invalid(format!("Cannot change the type of an existing attribute: {}", a.attribute_name)))
                    }
                    Some(_) => {}
                    None => def.attributes.push(KeyAttr { name: a.attribute_name.clone(), kind }),
                }
            }
            match input.billing_mode.as_deref() {
                    Some("PAY_PER_REQUEST") => {
                        if def.throughput.is_some() {
                            def.pay_per_request_since = Some(at);
                        }
                        def.throughput = None;
                    }
                    Some("PROVISIONED") => {
                        let Some(t) = throughput(input.provisioned_throughput) else {
                            return Err(TableError::invalid(
                                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                            ));
                        };
                        def.throughput = Some(t);
                    }
                    None => {
                        if let Some(t) = throughput(input.provisioned_throughput) {
                            if def.throughput.is_none() {
                                return Err(TableError::invalid(
                                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                                ));
                            }
                            def.throughput = Some(t);
                        }
                    }
                    Some(other) => {
                        return Err(validation(format!(
                            "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
                        )))
                    }
                }
            if let Some(protect) = input.deletion_protection_enabled {
                def.deletion_protection = protect;
            }
            let mut backfill = Vec::new();
            for update in input.global_secondary_index_updates.iter().flatten() {
                if let Some(create) = &update.create {
                    check_name(&create.index_name, "indexName")?;
                    if def.index(&create.index_name).is_some() {
                        return Err(TableError::invalid(format!(
                            "Attempting to create an index which already exists: {}",
                            create.index_name
                        )));
                    }
                    let key = key_schema(&create.key_schema, &def.attributes, "keySchema")?;
                    def.global_indexes.push(IndexDef {
                        name: create.index_name.clone(),
                        key,
                        projection: projection_type(&create.projection)?,
                        throughput: throughput(create.provisioned_throughput),
                    });
                    backfill.push(create.index_name.clone());
                }
                if let Some(delete) = &update.delete {
                    let before = def.global_indexes.len();
                    def.global_indexes.retain(|i| i.name != delete.index_name);
                    if before == def.global_indexes.len() {
                        return Err(TableError::NotFound(format!("Requested resource not found: Index: {} not found", delete.index_name)));
                    }
                    tx.drop_index(table.id, &delete.index_name).await?;
                }
                if let Some(change) = &update.update {
                    let index = def.global_indexes.iter_mut().find(|i| i.name == change.index_name).ok_or_else(|| {
                        TableError::NotFound(format!("Requested resource not found: Index: {} not found", change.index_name))
                    })?;
                    if let Some(t) = throughput(change.provisioned_throughput) {
                        index.throughput = Some(t);
                    }
                }
            }
            if let Some(view_type) = view_type {
                match (view_type, def.live_stream().is_some()) {
                    (Some(_), true) => {
                        return Err(validation(format!("Table already has an enabled stream: TableName: {}", def.name)));
                    }
                    (Some(view_type), false) => {
                        let label = stream_label(at);
                        let arn = format!("{}/stream/{label}", this.table_arn(&def.name));
                        let id = tx.insert_stream(&def.name, &arn, &view_type, &def.key, at).await?;
                        def.stream = Some(StreamDef { id, view_type, label, enabled: true });
                    }
                    (None, true) => {
                        let stream = def.stream.as_mut().expect("a live stream");
                        stream.enabled = false;
                        tx.disable_stream(stream.id, at).await?;
                    }
                    (None, false) => {
                        return Err(validation("Table already has no enabled stream"));
                    }
                }
            }
            tx.save_table(&table).await?;
            for index in backfill {
                tx.backfill_index(&table, &index).await?;
            }
            Ok(TableDescriptionOutput { table_description: this.describe(tx, &table, "ACTIVE").await? })
        })
    }

    /// UpdateTimeToLive.
    pub async fn update_time_to_live(&self, input: UpdateTimeToLiveInput) -> Result<UpdateTimeToLiveOutput, TableError> {
        let spec = input.time_to_live_specification;
        in_tx!(&self.db, true, |tx| {
            let mut table =
                tx.find_table_for_change(&input.table_name).await?.ok_or_else(|| TableError::no_such_table(&input.table_name))?;
            match (spec.enabled, &table.def.ttl_attribute) {
                (true, Some(_)) => return Err(validation("TimeToLive is already enabled")),
                (false, None) => return Err(validation("TimeToLive is already disabled")),
                (false, Some(name)) if *name != spec.attribute_name => {
                    return Err(validation(
                        "TimeToLive is active on a different AttributeName: current AttributeName is ".to_string() + name,
                    ))
                }
                _ => {}
            }
            table.def.ttl_attribute = spec.enabled.then(|| spec.attribute_name.clone());
            tx.save_table(&table).await?;
            tx.refresh_expiry(&table).await?;
            Ok(UpdateTimeToLiveOutput { time_to_live_specification: spec })
        })
    }

    /// DescribeTimeToLive.
    pub async fn describe_time_to_live(&self, name: String) -> Result<DescribeTimeToLiveOutput, TableError> {
        in_tx!(&self.db, false, |tx| {
            let table = tx.find_table(&name).await?.ok_or_else(|| TableError::no_such_table(&name))?;
            Ok(DescribeTimeToLiveOutput {
                time_to_live_description: TimeToLiveDescription {
                    time_to_live_status: if table.def.ttl_attribute.is_some() { "ENABLED" } else { "DISABLED" }.into(),
                    attribute_name: table.def.ttl_attribute,
                },
            })
        })
    }

    /// Deletes items whose TTL has passed (at most `limit`), recording each as a service
    /// removal in the table's stream. Returns how many went.
    pub async fn sweep_expired(&self, limit: usize) -> Result<usize, TableError> {
        let at = now();
        let expired = in_tx!(&self.db, false, |tx| tx.expired(at as i64, limit).await)?;
        let mut by_table: BTreeMap<String, Vec<EncodedKey>> = BTreeMap::new();
        for (name, key, _) in expired {
            by_table.entry(name).or_default().push(key);
        }
        let mut count = 0;
        // A transaction per table, its locks taken as every write takes them (the table, its
        // keys, its stream), each item read again under its lock: another node's sweep may
        // have removed it, or a write renewed it, since the list was read.
        for (name, keys) in by_table {
            count += in_tx!(&self.db, false, |tx| {
                // Deleted since the list was read (by another node): nothing to remove.
                let Some(table) = tx.find_table_for_write(&name).await? else { return Ok(0) };
                let held: Vec<(i64, &EncodedKey)> = keys.iter().map(|k| (table.id, k)).collect();
                tx.lock_items(&[&table], &held).await?;
                let mut removed = 0;
                for key in &keys {
                    let Some(item) = tx.get_item(table.id, key).await? else { continue };
                    if store::expiry(&table.def, &item).is_none_or(|t| t > at as i64) {
                        continue;
                    }
                    tx.apply_change(&table, key, Some(&item), None, at, Origin::Service).await?;
                    removed += 1;
                }
                Ok(removed)
            })?;
        }
        Ok(count)
    }

    /// A stream's records after sequence number `after` (for a DynamoDB Streams reader).
    pub async fn stream_records(&self, stream_id: i64, after: i64, limit: usize) -> Result<Vec<store::StreamRecord>, TableError> {
        in_tx!(&self.db, false, |tx| tx.stream_records(stream_id, after, limit).await)
    }

    // ---- items ------------------------------------------------------------------------------

    /// PutItem.
    pub async fn put_item(&self, input: PutItemInput) -> Result<AttributesOutput, TableError> {
        let expected =
            legacy_expected(&input.legacy, &[("ConditionExpression", input.condition_expression.is_some())], &input.params, false)?;
        let all_old = match input.return_values.as_deref() {
            None | Some("NONE") => false,
            Some("ALL_OLD") => true,
            Some(_) => return Err(validation("ReturnValues can only be ALL_OLD or NONE")),
        };
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let item = wire_item(input.item)?;
        let mut guard =
            guard(input.condition_expression.as_deref(), input.params, input.return_values_on_condition_check_failure.as_deref(), |_| {
                Ok(())
            })?;
        if expected.is_some() {
            guard.condition = expected;
        }
        check_size(&item)?;
        let name = input.table_name;
        in_tx!(&self.db, true, |tx| {
            let table = tx.table_for_write(&name).await?;
            let key = table.def.key.item_key(&item)?;
            check_index_keys(&table.def, &item)?;
            tx.lock_items(&[&table], &[(table.id, &key)]).await?;
            let old = tx.get_item(table.id, &key).await?;
            guard.check(old.as_ref())?;
            tx.apply_change(&table, &key, old.as_ref(), Some(&item), now(), Origin::Request).await?;
            let mut tally = Tally::default();
            tally.write(&table.def, old.as_ref(), Some(&item), 1.0);
            Ok(AttributesOutput { attributes: old.filter(|_| all_old), consumed_capacity: tally.consumed(&name, mode, Usage::Write) })
        })
    }

    /// GetItem.
    pub async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, TableError> {
        legacy::check_mixing(
            &[("ProjectionExpression", input.projection_expression.is_some())],
            &[("AttributesToGet", input.legacy.attributes_to_get.is_some())],
            input.expression_attribute_names.is_some(),
            false,
        )?;
        let attributes_to_get = legacy::attributes_to_get(input.legacy.attributes_to_get.as_ref())?;
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let consistent = input.consistent_read == Some(true);
        let key = wire_item(input.key)?;
        let projection = projection_of(input.projection_expression.as_deref(), input.expression_attribute_names)?.or(attributes_to_get);
        let name = input.table_name;
        in_read!(&self.db, false, |tx| {
            let table = tx.table(&name).await?;
            let encoded = table.def.key.key_of(&key)?;
            let item = tx.get_item(table.id, &encoded).await?;
            let mut tally = Tally::default();
            tally.read(&table.def, None, read_units(item.as_ref().map_or(0, item_size), consistent));
            Ok(GetItemOutput { item: item.map(|i| project(&projection, i)), consumed_capacity: tally.consumed(&name, mode, Usage::Read) })
        })
    }

    /// UpdateItem.
    pub async fn update_item(&self, input: UpdateItemInput) -> Result<AttributesOutput, TableError> {
        let expected = legacy_expected(
            &input.legacy,
            &[("UpdateExpression", input.update_expression.is_some()), ("ConditionExpression", input.condition_expression.is_some())],
            &input.params,
            true,
        )?;
        let attribute_updates = input.legacy.attribute_updates.as_ref().map(legacy::attribute_updates).transpose()?.flatten();
        let returns = input.return_values.clone().unwrap_or_else(|| "NONE".into());
        if !matches!(returns.as_str(), "NONE" | "ALL_OLD" | "UPDATED_OLD" | "ALL_NEW" | "UPDATED_NEW") {
            return Err(validation(format!(
                "1 validation error detected: Value '{returns}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
            )));
        }
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let key = wire_item(input.key)?;
        let mut update = None;
        let text = input.update_expression.clone();
        let mut guard = guard(
            input.condition_expression.as_deref(),
            input.params,
            input.return_values_on_condition_check_failure.as_deref(),
            |placeholders| {
                update = text.as_deref().map(|t| Update::parse(t, placeholders)).transpose()?;
                Ok(())
            },
        )?;
        if expected.is_some() {
            guard.condition = expected;
        }
        let legacy_update = attribute_updates.is_some();
        if legacy_update {
            update = attribute_updates;
        }
        let name = input.table_name;
        in_tx!(&self.db, true, |tx| {
            let table = tx.table_for_write(&name).await?;
            let encoded = table.def.key.key_of(&key)?;
            if let Some(update) = &update {
                update.check_key_attributes(&table.def.key.names())?;
            }
            tx.lock_items(&[&table], &[(table.id, &encoded)]).await?;
            let old = tx.get_item(table.id, &encoded).await?;
            guard.check(old.as_ref())?;
            let mut new = old.clone().unwrap_or_else(|| key.clone());
            if let Some(update) = &update {
                update.apply(&mut new).map_err(|e| match e {
                    // AttributeUpdates' ADD/DELETE on another type: dynalite
                    // `actions/updateItem.js` (tested against DynamoDB).
                    UpdateError::IncorrectDataType if legacy_update => validation("Type mismatch for attribute to update"),
                    e => e.into(),
                })?;
            }
            check_size(&new)?;
            check_index_keys(&table.def, &new)?;
            tx.apply_change(&table, &encoded, old.as_ref(), Some(&new), now(), Origin::Request).await?;
            let mut tally = Tally::default();
            tally.write(&table.def, old.as_ref(), Some(&new), 1.0);
            let updated = || Projection::from_paths(update.as_ref().map(|u| u.paths().into_iter().cloned().collect()).unwrap_or_default());
            let attributes = match returns.as_str() {
                "ALL_OLD" => old,
                "ALL_NEW" => Some(new),
                "UPDATED_OLD" => old.map(|o| updated().apply(&o)),
                "UPDATED_NEW" => Some(updated().apply(&new)),
                _ => None,
            };
            Ok(AttributesOutput {
                attributes: attributes.filter(|a| !a.is_empty()),
                consumed_capacity: tally.consumed(&name, mode, Usage::Write),
            })
        })
    }

    /// DeleteItem.
    pub async fn delete_item(&self, input: DeleteItemInput) -> Result<AttributesOutput, TableError> {
        let expected =
            legacy_expected(&input.legacy, &[("ConditionExpression", input.condition_expression.is_some())], &input.params, false)?;
        let all_old = match input.return_values.as_deref() {
            None | Some("NONE") => false,
            Some("ALL_OLD") => true,
            Some(_) => return Err(validation("ReturnValues can only be ALL_OLD or NONE")),
        };
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let key = wire_item(input.key)?;
        let mut guard =
            guard(input.condition_expression.as_deref(), input.params, input.return_values_on_condition_check_failure.as_deref(), |_| {
                Ok(())
            })?;
        if expected.is_some() {
            guard.condition = expected;
        }
        let name = input.table_name;
        in_tx!(&self.db, true, |tx| {
            let table = tx.table_for_write(&name).await?;
            let encoded = table.def.key.key_of(&key)?;
            tx.lock_items(&[&table], &[(table.id, &encoded)]).await?;
            let old = tx.get_item(table.id, &encoded).await?;
            guard.check(old.as_ref())?;
            if old.is_some() {
                tx.apply_change(&table, &encoded, old.as_ref(), None, now(), Origin::Request).await?;
            }
            let mut tally = Tally::default();
            tally.write(&table.def, old.as_ref(), None, 1.0);
            Ok(AttributesOutput { attributes: old.filter(|_| all_old), consumed_capacity: tally.consumed(&name, mode, Usage::Write) })
        })
    }

    /// Query (`query: true`) or Scan.
    pub async fn read(&self, input: ReadInput, query: bool) -> Result<ReadOutput, TableError> {
        let legacy = &input.legacy;
        let mut expressions =
            vec![("ProjectionExpression", input.projection_expression.is_some()), ("FilterExpression", input.filter_expression.is_some())];
        let legacy_filter = if query { ("QueryFilter", &legacy.query_filter) } else { ("ScanFilter", &legacy.scan_filter) };
        let mut non_expression = vec![
            ("AttributesToGet", legacy.attributes_to_get.is_some()),
            (legacy_filter.0, legacy_filter.1.is_some()),
            ("ConditionalOperator", legacy.conditional_operator.is_some()),
        ];
        if query {
            expressions.push(("KeyConditionExpression", input.key_condition_expression.is_some()));
            non_expression.push(("KeyConditions", legacy.key_conditions.is_some()));
        }
        legacy::check_mixing(
            &expressions,
            &non_expression,
            input.params.expression_attribute_names.is_some(),
            input.params.expression_attribute_values.is_some(),
        )?;
        let or = legacy::is_or(legacy.conditional_operator.as_ref())?;
        let legacy_filter = match legacy_filter.1 {
            Some(json) => legacy::filter(json, legacy_filter.0, or)?,
            None => None,
        };
        let attributes_to_get = legacy::attributes_to_get(legacy.attributes_to_get.as_ref())?;
        if let Some(limit) = input.limit.filter(|l| *l < 1) {
            return Err(validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        let select = input.select.clone().unwrap_or_default();
        if !matches!(select.as_str(), "" | "ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES" | "SPECIFIC_ATTRIBUTES" | "COUNT") {
            return Err(validation(format!(
                "1 validation error detected: Value '{select}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )));
        }
        // Texts: LocalStack's AWS-verified `test_*_rejected_for_non_specific_select` (Query's
        // with the "1 validation error detected: " prefix, Scan's without).
        let projected = if input.projection_expression.is_some() {
            Some("ProjectionExpression")
        } else {
            attributes_to_get.as_ref().map(|_| "AttributesToGet")
        };
        if let Some(parameter) = projected.filter(|_| !matches!(select.as_str(), "" | "SPECIFIC_ATTRIBUTES")) {
            let prefix = if query { "1 validation error detected: " } else { "" };
            let what = if select == "COUNT" { "only the Count" } else { select.as_str() };
            return Err(validation(format!("{prefix}Cannot specify the {parameter} when choosing to get {what}")));
        }
        let segment = match (input.segment, input.total_segments) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ))
            }
            (None, Some(_)) => {
                return Err(validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ))
            }
            (Some(s), Some(t)) => {
                if !(1..=1_000_000).contains(&t) {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{t}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                        if t < 1 { "greater than or equal to 1" } else { "less than or equal to 1000000" }
                    )));
                }
                if s < 0 || s >= t {
                    return Err(validation(format!(
                        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                    )));
                }
                Some((s, t))
            }
        };
        let mut placeholders = Placeholders::from_wire(input.params.expression_attribute_names, input.params.expression_attribute_values)?;
        let key_condition = if query {
            match (input.key_condition_expression.as_deref(), &legacy.key_conditions) {
                (Some(text), _) => Some(KeyCondition::parse(text, &mut placeholders)?),
                (None, Some(json)) => Some(legacy::key_conditions(json)?),
                (None, None) => {
                    return Err(validation(
                        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                    ))
                }
            }
        } else {
            None
        };
        let filter_name = if legacy_filter.is_some() { "QueryFilter" } else { "Filter Expression" };
        let filter = input
            .filter_expression
            .as_deref()
            .map(|f| Condition::parse(f, ExpressionKind::Filter, &mut placeholders))
            .transpose()?
            .or(legacy_filter);
        let projection =
            input.projection_expression.as_deref().map(|p| Projection::parse(p, &mut placeholders)).transpose()?.or(attributes_to_get);
        placeholders.check_unused()?;
        let start = input.exclusive_start_key.map(wire_item).transpose()?;
        let limit = input.limit.map(|l| l as usize).unwrap_or(usize::MAX);
        let count_only = select == "COUNT";
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let consistent = input.consistent_read == Some(true);
        let forward = input.scan_index_forward.unwrap_or(true);
        let (name, index_name) = (input.table_name, input.index_name);
        in_read!(&self.db, true, |tx| {
            let table = tx.table(&name).await?;
            let index = match &index_name {
                None => None,
                Some(i) => {
                    Some(table.def.index(i).ok_or_else(|| validation(format!("The table does not have the specified index: {i}")))?.clone())
                }
            };
            if consistent && index.as_ref().is_some_and(|i| table.def.global_indexes.iter().any(|g| g.name == i.name)) {
                return Err(validation("Consistent reads are not supported on global secondary indexes"));
            }
            let schema = index.as_ref().map_or(&table.def.key, |i| &i.key);
            if let (Some(filter), true) = (&filter, query) {
                let keys = schema.names();
                if let Some(key) = filter.attributes().into_iter().find(|a| keys.contains(a)) {
                    return Err(validation(format!(
                        "{filter_name} can only contain non-primary key attributes: Primary key attribute: {key}"
                    )));
                }
            }
            let mut scan = Scan {
                table_id: table.id,
                index: index_name.as_deref(),
                partition: None,
                range: Range::default(),
                forward,
                after: None,
                segment,
            };
            if let Some(condition) = &key_condition {
                let q = condition.for_schema(&schema.hash.name, schema.range.as_ref().map(|r| r.name.as_str()))?;
                q.check_types(schema.hash.kind.value_type(), schema.range.as_ref().map(|r| r.kind.value_type()))?;
                scan.partition = Some(key_bytes(&q.partition));
                if let Some(sort) = &q.sort {
                    scan.range = sort_range(sort);
                }
            }
            if let Some(start) = &start {
                scan.after = Some(start_position(&table.def, index.as_ref(), start, query)?);
            }
            let mut out = ReadOutput::default();
            let mut items = Vec::new();
            let mut bytes = 0;
            let mut read_bytes = 0;
            let mut last = None;
            let sort_condition = key_condition
                .as_ref()
                .and_then(|c| c.for_schema(&schema.hash.name, schema.range.as_ref().map(|r| r.name.as_str())).ok().and_then(|q| q.sort));
            let range_name = schema.range.as_ref().map(|r| r.name.clone());
            tx.scan(&scan, &mut |item| {
                // begins_with ranges are exact; the check keeps every condition honest.
                if let (Some(sort), Some(range)) = (&sort_condition, &range_name) {
                    if !item.get(range).is_some_and(|v| sort.matches(v)) {
                        return Ok(true);
                    }
                }
                out.scanned_count += 1;
                bytes += item_size(&item);
                let visible = match &index {
                    Some(i) => i.project(&table.def.key, &item),
                    None => item.clone(),
                };
                read_bytes += item_size(&visible);
                if filter.as_ref().is_none_or(|f| f.evaluate(&visible)) {
                    out.count += 1;
                    if !count_only {
                        items.push(project(&projection, visible));
                    }
                }
                if out.scanned_count as usize >= limit || bytes >= PAGE_BYTES {
                    let mut key = table.def.key.project_key(&item);
                    if let Some(i) = &index {
                        key.extend(i.key.project_key(&item));
                    }
                    last = Some(key);
                    return Ok(false);
                }
                Ok(true)
            })
            .await?;
            out.items = (!count_only).then_some(items);
            out.last_evaluated_key = last;
            let mut tally = Tally::default();
            tally.read(&table.def, index_name.as_deref(), read_units(read_bytes, consistent));
            out.consumed_capacity = tally.consumed(&name, mode, Usage::Read);
            Ok(out)
        })
    }

    /// BatchGetItem.
    pub async fn batch_get_item(&self, input: BatchGetItemInput) -> Result<BatchGetItemOutput, TableError> {
        let total: usize = input.request_items.values().map(|k| k.keys.len()).sum();
        if total > MAX_BATCH_GET {
            return Err(validation("Too many items requested for the BatchGetItem call"));
        }
        if input.request_items.is_empty() {
            return Err(validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let mut requests = Vec::new();
        for (table, k) in input.request_items {
            legacy::check_mixing(
                &[("ProjectionExpression", k.projection_expression.is_some())],
                &[("AttributesToGet", k.legacy.attributes_to_get.is_some())],
                k.expression_attribute_names.is_some(),
                false,
            )?;
            let attributes_to_get = legacy::attributes_to_get(k.legacy.attributes_to_get.as_ref())?;
            let consistent = k.consistent_read == Some(true);
            let projection = projection_of(k.projection_expression.as_deref(), k.expression_attribute_names)?.or(attributes_to_get);
            let keys = k.keys.into_iter().map(wire_item).collect::<Result<Vec<_>, _>>()?;
            requests.push((table, keys, projection, consistent));
        }
        in_read!(&self.db, false, |tx| {
            let mut out = BatchGetItemOutput::default();
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            for (name, keys, projection, consistent) in requests {
                let table = tx.table(&name).await?;
                let tally = tallies.entry(name.clone()).or_default();
                let mut seen = BTreeSet::new();
                let mut found = Vec::new();
                for key in keys {
                    let encoded = table.def.key.key_of(&key)?;
                    if !seen.insert(encoded.clone()) {
                        return Err(validation("Provided list of item keys contains duplicates"));
                    }
                    let item = tx.get_item(table.id, &encoded).await?;
                    tally.read(&table.def, None, read_units(item.as_ref().map_or(0, item_size), consistent));
                    if let Some(item) = item {
                        found.push(project(&projection, item));
                    }
                }
                out.responses.insert(name, found);
            }
            out.consumed_capacity = per_table(&tallies, mode, Usage::Read);
            Ok(out)
        })
    }

    /// BatchWriteItem: every request written in one transaction.
    pub async fn batch_write_item(&self, input: BatchWriteItemInput) -> Result<BatchWriteItemOutput, TableError> {
        let total: usize = input.request_items.values().map(Vec::len).sum();
        if total > MAX_BATCH_WRITE {
            return Err(validation("Too many items requested for the BatchWriteItem call"));
        }
        if input.request_items.is_empty() || input.request_items.values().any(Vec::is_empty) {
            return Err(validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let mut requests = Vec::new();
        for (table, list) in input.request_items {
            for request in list {
                let write =
                    match (request.put_request, request.delete_request) {
                        (Some(put), None) => {
                            let item = wire_item(put.item)?;
                            check_size(&item)?;
                            (true, item)
                        }
                        (None, Some(delete)) => (false, wire_item(delete.key)?),
                        _ => return Err(validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        )),
                    };
                requests.push((table.clone(), write));
            }
        }
        in_tx!(&self.db, true, |tx| {
            // Tables in name order (every write takes its locks in one order).
            let mut tables: BTreeMap<String, Loaded> = BTreeMap::new();
            for name in requests.iter().map(|(name, _)| name).collect::<BTreeSet<_>>() {
                tables.insert(name.clone(), tx.table_for_write(name).await?);
            }
            let mut planned = Vec::new();
            let mut seen = BTreeSet::new();
            for (name, (put, item)) in &requests {
                let table = &tables[name];
                // A PutRequest's item without its key is answered as a bad Key, unlike
                // PutItem's "Missing the key …" (LocalStack's AWS-validated
                // test_batch_write_not_matching_schema).
                if *put && table.def.key.names().iter().any(|n| !item.contains_key(*n)) {
                    return Err(validation("The provided key element does not match the schema"));
                }
                let key = if *put { table.def.key.item_key(item)? } else { table.def.key.key_of(item)? };
                if *put {
                    check_index_keys(&table.def, item)?;
                }
                if !seen.insert((name.clone(), key.clone())) {
                    return Err(validation("Provided list of item keys contains duplicates"));
                }
                planned.push((name.clone(), key, put.then(|| item.clone())));
            }
            let held: Vec<(i64, &EncodedKey)> = planned.iter().map(|(name, key, _)| (tables[name].id, key)).collect();
            tx.lock_items(&tables.values().collect::<Vec<_>>(), &held).await?;
            let at = now();
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            for (name, key, new) in planned {
                let table = &tables[&name];
                let old = tx.get_item(table.id, &key).await?;
                tallies.entry(name.clone()).or_default().write(&table.def, old.as_ref(), new.as_ref(), 1.0);
                if old.is_none() && new.is_none() {
                    continue;
                }
                tx.apply_change(table, &key, old.as_ref(), new.as_ref(), at, Origin::Request).await?;
            }
            Ok(BatchWriteItemOutput { consumed_capacity: per_table(&tallies, mode, Usage::Write), ..Default::default() })
        })
    }

    /// TransactWriteItems: all entries' conditions checked, then all written, in one SQLite
    /// transaction; any failure cancels everything with one reason per entry.
    pub async fn transact_write_items(&self, input: TransactWriteItemsInput) -> Result<TransactWriteItemsOutput, TableError> {
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let n = input.transact_items.len();
        if n == 0 || n > MAX_TRANSACT {
            let bound = if n == 0 { "greater than or equal to 1" } else { "less than or equal to 100" };
            return Err(validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {bound}"
            )));
        }
        enum Op {
            Check,
            Put(Item),
            Delete,
            Update(Option<Update>),
        }
        let mut entries = Vec::new();
        for item in input.transact_items {
            let (op_name, entry) = match (item.condition_check, item.put, item.delete, item.update) {
                (Some(e), None, None, None) => ("check", e),
                (None, Some(e), None, None) => ("put", e),
                (None, None, Some(e), None) => ("delete", e),
                (None, None, None, Some(e)) => ("update", e),
                _ => return Err(validation("TransactItems can only contain one of Check, Put, Update or Delete")),
            };
            let mut update = None;
            let text = entry.update_expression.clone();
            if op_name == "check" && entry.condition_expression.is_none() {
                return Err(validation("The ConditionExpression parameter is required for ConditionCheck"));
            }
            let guard = guard(
                entry.condition_expression.as_deref(),
                entry.params,
                entry.return_values_on_condition_check_failure.as_deref(),
                |placeholders| {
                    if op_name == "update" {
                        let text = text.as_deref().ok_or_else(|| validation("The UpdateExpression parameter is required for Update"))?;
                        update = Some(Update::parse(text, placeholders)?);
                    }
                    Ok(())
                },
            )?;
            let (op, key_item) = match op_name {
                "put" => {
                    let item = wire_item(entry.item.ok_or_else(|| validation("The Item parameter is required for Put"))?)?;
                    check_size(&item)?;
                    (Op::Put(item.clone()), item)
                }
                other => {
                    let key = wire_item(entry.key.ok_or_else(|| validation("The Key parameter is required"))?)?;
                    let op = match other {
                        "check" => Op::Check,
                        "delete" => Op::Delete,
                        _ => Op::Update(update),
                    };
                    (op, key)
                }
            };
            entries.push((entry.table_name, op, key_item, guard));
        }
        in_tx!(&self.db, true, |tx| {
            // Tables in name order (every write takes its locks in one order).
            let mut tables: BTreeMap<String, Loaded> = BTreeMap::new();
            for name in entries.iter().map(|(name, ..)| name).collect::<BTreeSet<_>>() {
                tables.insert(name.clone(), tx.table_for_write(name).await?);
            }
            let mut seen = BTreeSet::new();
            let mut keyed = Vec::new();
            for (name, op, key_item, guard) in entries {
                let table = &tables[&name];
                let key = match &op {
                    Op::Put(item) => {
                        let key = table.def.key.item_key(item)?;
                        check_index_keys(&table.def, item)?;
                        key
                    }
                    Op::Update(Some(update)) => {
                        update.check_key_attributes(&table.def.key.names())?;
                        table.def.key.key_of(&key_item)?
                    }
                    _ => table.def.key.key_of(&key_item)?,
                };
                if !seen.insert((name.clone(), key.clone())) {
                    return Err(validation("Transaction request cannot include multiple operations on one item"));
                }
                keyed.push((name, op, key_item, guard, key));
            }
            let held: Vec<(i64, &EncodedKey)> = keyed.iter().map(|(name, _, _, _, key)| (tables[name].id, key)).collect();
            tx.lock_items(&tables.values().collect::<Vec<_>>(), &held).await?;
            let mut reasons = Vec::new();
            let mut writes = Vec::new();
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            for (name, op, key_item, guard, key) in keyed {
                let table = &tables[&name];
                let old = tx.get_item(table.id, &key).await?;
                if matches!(op, Op::Check) {
                    // A condition check counts as a write of the item it reads.
                    tallies.entry(name.clone()).or_default().table += crate::capacity::write_units(old.as_ref().map_or(0, item_size)) * 2.0;
                }
                if let Err(e) = guard.check(old.as_ref()) {
                    let item = match e {
                        TableError::ConditionalCheckFailed { item } => item,
                        _ => None,
                    };
                    reasons.push(CancellationReason {
                        code: "ConditionalCheckFailed".into(),
                        message: Some("The conditional request failed".into()),
                        item,
                    });
                    continue;
                }
                let new = match op {
                    Op::Check => {
                        reasons.push(CancellationReason::none());
                        continue;
                    }
                    Op::Put(item) => Some(item),
                    Op::Delete => None,
                    Op::Update(update) => {
                        let mut new = old.clone().unwrap_or(key_item);
                        let applied = match &update {
                            Some(u) => u.apply(&mut new).map_err(TableError::from),
                            None => Ok(()),
                        }
                        .and_then(|()| check_size(&new))
                        .and_then(|()| check_index_keys(&table.def, &new));
                        if let Err(e) = applied {
                            reasons.push(CancellationReason { code: "ValidationError".into(), message: Some(e.to_string()), item: None });
                            continue;
                        }
                        Some(new)
                    }
                };
                reasons.push(CancellationReason::none());
                writes.push((name, key, old, new));
            }
            if reasons.iter().any(|r| r.code != "None") {
                return Err(TableError::TransactionCanceled(reasons));
            }
            let at = now();
            for (name, key, old, new) in writes {
                tallies.entry(name.clone()).or_default().write(&tables[&name].def, old.as_ref(), new.as_ref(), 2.0);
                if old.is_none() && new.is_none() {
                    continue;
                }
                tx.apply_change(&tables[&name], &key, old.as_ref(), new.as_ref(), at, Origin::Request).await?;
            }
            Ok(TransactWriteItemsOutput { consumed_capacity: per_table(&tallies, mode, Usage::TransactWrite) })
        })
    }

    /// TransactGetItems: every item read in one transaction.
    pub async fn transact_get_items(&self, input: TransactGetItemsInput) -> Result<TransactGetItemsOutput, TableError> {
        let n = input.transact_items.len();
        if n == 0 || n > MAX_TRANSACT {
            let bound = if n == 0 { "greater than or equal to 1" } else { "less than or equal to 100" };
            return Err(validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {bound}"
            )));
        }
        let mode = CapacityMode::parse(input.return_consumed_capacity.as_deref())?;
        let mut gets = Vec::new();
        for entry in input.transact_items {
            let get = entry.get;
            let projection = projection_of(get.projection_expression.as_deref(), get.expression_attribute_names)?;
            gets.push((get.table_name, wire_item(get.key)?, projection));
        }
        in_read!(&self.db, true, |tx| {
            let mut out = TransactGetItemsOutput::default();
            let mut seen = BTreeSet::new();
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            for (name, key, projection) in gets {
                let table = tx.table(&name).await?;
                let encoded = table.def.key.key_of(&key)?;
                if !seen.insert((name.clone(), encoded.clone())) {
                    return Err(validation("Transaction request cannot include multiple operations on one item"));
                }
                let item = tx.get_item(table.id, &encoded).await?;
                let units = read_units(item.as_ref().map_or(0, item_size), true) * 2.0;
                tallies.entry(name.clone()).or_default().read(&table.def, None, units);
                out.responses.push(ItemResponse { item: item.map(|i| project(&projection, i)) });
            }
            out.consumed_capacity = per_table(&tallies, mode, Usage::TransactRead);
            Ok(out)
        })
    }
}

/// Refuses an item whose secondary index key attributes have the wrong type (AWS refuses the
/// write rather than leaving the item out of the index).
fn check_index_keys(def: &TableDef, item: &Item) -> Result<(), TableError> {
    for index in def.indexes() {
        index.key.index_key(&index.name, item)?;
    }
    Ok(())
}

/// Where a page resumes, from ExclusiveStartKey: the sort columns' values after the partition
/// for a Query, all of them for a Scan.
fn start_position(def: &TableDef, index: Option<&IndexDef>, start: &Item, query: bool) -> Result<Vec<Vec<u8>>, TableError> {
    let invalid = || validation("The provided starting key is invalid: The provided key element does not match the schema");
    let table_key: EncodedKey = {
        let key = def.key.project_key(start);
        def.key.key_of(&key).map_err(|_| invalid())?
    };
    match index {
        None => {
            if start.len() != def.key.names().len() {
                return Err(invalid());
            }
            Ok(if query { vec![table_key.sk] } else { vec![table_key.pk, table_key.sk] })
        }
        Some(index) => {
            let index_key = index.key.index_key(&index.name, start).map_err(|_| invalid())?.ok_or_else(invalid)?;
            Ok(if query {
                vec![index_key.sk, table_key.pk, table_key.sk]
            } else {
                vec![index_key.pk, index_key.sk, table_key.pk, table_key.sk]
            })
        }
    }
}
