//! The typed model of a spec file. These types are the single source of truth for the format:
//! `specs/schema.json` is generated from them and every field is documented here, so that the
//! schema an editor shows carries the same words.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One API as one document describes it (`specs/<vendor>-<product>/<Action>.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// Who serves the API and how it is addressed.
    pub api: ApiIdentity,
    /// Every document the spec cites; `source.doc` refers to these ids.
    pub documents: Vec<DocumentRef>,
    /// Request parameters as the document lists them (common parameters live in the family spec).
    pub parameters: Vec<Parameter>,
    /// Resources the parameters refer to.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Whether one bad item fails the whole batch or is reported per item.
    pub batch: Batch,
    /// What a successful call does to the world.
    pub effect: Effect,
    /// Fields of a successful response, inside the family's envelope.
    #[serde(default)]
    pub success_fields: Vec<Field>,
    /// The checkable statements of the document, in document order.
    pub rules: Vec<Rule>,
    /// How to choose among the codes when one request breaks several rules.
    #[serde(default)]
    pub precedence: Precedence,
    /// The document's error-code table, extended by later sources.
    pub error_codes: Vec<ErrorCodeEntry>,
    /// The document's examples, verbatim.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Wire forms the documents show besides the one the SDKs send (an example's 1-based list,
    /// its spelling of the action, `TRUE`/`FALSE`, a spaced JSON list): a conforming target
    /// accepts both, so the generators vary them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wire: Vec<WireForm>,
    /// Contradictions inside or between the documents.
    #[serde(default)]
    pub errata: Vec<Erratum>,
    /// What the documents leave open, with the emulator's choice and what the oracle accepts.
    #[serde(default)]
    pub unspecified: Vec<Unspecified>,
}

impl ApiSpec {
    /// The product owning the instances the effect acts on: the product of the resource the
    /// effect's instance parameter references, else the API's own product. The one definition
    /// every stage uses (locking, observing, judging, generating).
    pub fn instance_product(&self) -> Product {
        self.parameters
            .iter()
            .find(|p| p.name == self.effect.instances)
            .and_then(|p| p.references.as_deref())
            .and_then(|name| self.resources.iter().find(|r| r.name == name))
            .map_or(self.api.product, |r| r.product)
    }

    /// The business parameter that names the request's region (Alibaba `RegionId`), where the
    /// API has one: a string parameter whose name says region. The generator fills it with the
    /// case's region; restore's calls set it to the instance's.
    pub fn region_param(&self) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.kind == ParamType::String && p.name.to_ascii_lowercase().contains("region"))
            .map(|p| p.name.as_str())
    }

    /// The flag that lets the call act on a RUNNING instance by stopping it (`ForceStop`): the
    /// boolean parameter named `Force…`, where the API has one. The one definition the
    /// generator, the plan, the safety gate and the restore use.
    pub fn force_flag(&self) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.kind == ParamType::Boolean && p.name.starts_with("Force"))
            .map(|p| p.name.as_str())
    }
}

/// The identity of one API.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiIdentity {
    /// `tencent` or `alibaba`.
    pub vendor: String,
    /// The product whose resources the API acts on.
    pub product: Product,
    /// The action name as sent on the wire (`Action=`, `X-TC-Action`).
    pub action: String,
    /// The API version (`Version=`); API 2.0 sends none.
    #[serde(default)]
    pub version: Option<String>,
    /// The wire protocol family.
    pub family: FamilyId,
    /// The service name used in the TC3 credential scope (`cvm`, `ecm`); empty for other families.
    #[serde(default)]
    pub service: Option<String>,
    /// Documented endpoints; the first is the default.
    pub endpoints: Vec<Endpoint>,
    /// The documented request rate, if any.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Where the API is described.
    pub source: Source,
}

/// Products whose resources the five APIs touch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// Tencent Cloud Virtual Machine (API 3.0 and the legacy API 2.0).
    Cvm,
    /// Tencent Edge Computing Machine.
    Ecm,
    /// Alibaba Elastic Compute Service.
    Ecs,
}

impl Product {
    /// The name used in spec files and world files.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Cvm => "cvm",
            Product::Ecm => "ecm",
            Product::Ecs => "ecs",
        }
    }
}

/// The three wire families.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FamilyId {
    /// Tencent Cloud API 3.0: JSON POST with TC3-HMAC-SHA256, or GET/form with v1 signatures.
    TencentApi3,
    /// Tencent Cloud API 2.0: `/v2/index.php`, v1 signatures, `code`/`message` bodies.
    TencentV2,
    /// Alibaba Cloud RPC style: HMAC-SHA1 signature version 1.0 (and ACS3 on the server side).
    AliyunRpc,
}

impl FamilyId {
    /// The family spec's file stem under `specs/families/`.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyId::TencentApi3 => "tencent_api3",
            FamilyId::TencentV2 => "tencent_v2",
            FamilyId::AliyunRpc => "aliyun_rpc",
        }
    }
}

/// A documented endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Host name as the document gives it.
    pub host: String,
    /// Request path (`/`, `/v2/index.php`).
    pub path: String,
    /// Where the document names it.
    pub source: Source,
    /// The vendor's host for one region, with `{region}` where the region id goes
    /// (`cvm.{region}.tencentcloudapi.com`): `run --cloud` sends a request there for the
    /// request's region. Absent where the vendor documents one host for every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regional: Option<RegionalHost>,
}

/// A documented per-region host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionalHost {
    /// The host with `{region}` where the region id goes.
    pub host: String,
    /// Where the vendor documents it.
    pub source: Source,
}

impl Endpoint {
    /// The host a request for `region` goes to: the regional form where documented, else
    /// [`Endpoint::host`]. A region that is not a plain id (letters, digits, `-`) gets the
    /// global host, so no region string can make up a host name.
    pub fn host_for(&self, region: Option<&str>) -> String {
        match (&self.regional, region) {
            (Some(r), Some(region))
                if !region.is_empty()
                    && region.len() <= 64
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                r.host.replace("{region}", region)
            }
            _ => self.host.clone(),
        }
    }
}

/// A documented rate limit: requests per second per account for this action (the documents say
/// "per second for this API"), probed by `apiconform run` with a burst just over it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: u32,
    /// Where the limit is stated.
    pub source: Source,
}

/// A document a spec cites.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    /// Short id used by `source.doc` (`seed-004`, `ref-cvm-errorcodes`).
    pub id: String,
    /// Path relative to the shared folder (`seeds/004_3d0f5c37590c992d.txt`); absent for a
    /// vendor page cited by its `url` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The vendor's page, for a document with no copy in the shared folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether it is a seed document or a later reference.
    pub kind: DocumentKind,
    /// The document's own title.
    pub title: String,
}

impl DocumentRef {
    /// Where to read it: the file under the shared folder, else the vendor's page.
    pub fn location(&self) -> &str {
        self.file.as_deref().or(self.url.as_deref()).unwrap_or("-")
    }
}

/// Seed documents are what the specs transcribe; references are later, machine-readable sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// One of the seed documents.
    Seed,
    /// A later vendor source (current definitions, SDK behaviour).
    Reference,
}

/// Where a statement comes from: a document id from `documents` and the section holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A `documents[].id` of this spec (or of its family spec).
    pub doc: String,
    /// The section heading, as printed in the document.
    pub section: String,
    /// The words of the document that carry the statement, when short enough to quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// One request parameter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The document's name (`InstanceIds`, `keyId`).
    pub name: String,
    /// The wire form as the document writes it (`InstanceIds.N`, `instanceIds.n`, `InstanceIds`).
    pub wire: String,
    /// The parameter's type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Whether the document marks it required.
    pub required: bool,
    /// The documented default.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Most items a list may hold.
    #[serde(default)]
    pub max_items: Option<u32>,
    /// A regular expression every value (or list item) must match, anchored.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The resource (from `resources`) each value names.
    #[serde(default)]
    pub references: Option<String>,
    /// The document's description.
    pub description: String,
    /// Where the document lists it.
    pub source: Source,
}

/// Parameter types as the documents give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A string.
    String,
    /// A boolean (`true`/`false` in JSON; `True`, `true`, `TRUE` on forms).
    Boolean,
    /// An integer.
    Integer,
    /// An array of strings: a JSON array in API 3.0 JSON bodies, `Name.N` items on forms.
    StringList,
    /// A string holding a JSON array of strings (Alibaba `InstanceIds`).
    JsonStringList,
}

/// A resource kind parameters refer to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The name parameters use in `references`.
    pub name: String,
    /// Instance or key pair.
    pub kind: ResourceKind,
    /// Product that owns it.
    pub product: Product,
    /// How parameters name it.
    pub identified_by: IdentifiedBy,
    /// Where the document describes it.
    pub source: Source,
}

/// Resource kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A virtual machine.
    Instance,
    /// An SSH key pair.
    KeyPair,
}

/// Whether a resource is named by its id or by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifiedBy {
    /// By id (`ins-…`, `skey-…`, `i-…`).
    Id,
    /// By name (Alibaba `KeyPairName`).
    Name,
}

/// Batch semantics.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// All or nothing, or per item.
    pub mode: BatchMode,
    /// The list parameter the batch runs over.
    pub param: String,
    /// Where the document says so.
    pub source: Source,
}

/// How a batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// One item that cannot be operated on fails the whole request, and nothing changes.
    AllOrNothing,
    /// Each item succeeds or fails on its own and the response lists each.
    PerItem,
}

/// What a successful call does to the world.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    /// Bind (replacing earlier keys) or unbind.
    pub kind: EffectKind,
    /// The parameter naming the instances.
    pub instances: String,
    /// The parameter naming the keys.
    pub keys: String,
    /// How a user can observe the effect, best first; empty when nothing can.
    pub observe: Vec<Observation>,
    /// Where the document describes the effect.
    pub source: Source,
}

/// What a successful call does to the key bindings of the instances it names: the vocabulary an
/// API's effect is written in. Each stage that follows an effect (the oracle's model, the
/// emulator's spec-served APIs, the plan's reversibility, restore) matches on it exhaustively,
/// so a new kind does not compile until each says what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Replace the instance's keys with the named ones: keys bound before become invalid
    /// (CVM `AssociateInstancesKeyPairs`, ECS `AttachKeyPair`).
    #[serde(alias = "replace")]
    BindReplace,
    /// Remove the named keys from the instance's keys.
    #[serde(alias = "remove")]
    Unbind,
    /// Add the named keys to the instance's keys, keeping those bound before.
    Add,
}

/// Ways to observe a key binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// CVM `DescribeInstances` → `LoginSettings.KeyIds`.
    CvmDescribeInstances,
    /// CVM `DescribeKeyPairs` → `AssociatedInstanceIds`.
    CvmDescribeKeyPairs,
    /// Alibaba `DescribeInstances` → `KeyPairName`.
    EcsDescribeInstances,
    /// The per-item `Results` of the response itself.
    PerItemResults,
    /// The emulator's test-only admin view (emulator only).
    Admin,
}

/// A field of a successful response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Dotted path inside the family envelope (`RequestId`, `Results.Result[].Code`).
    pub path: String,
    /// Accepted JSON types; several when sources disagree (`[string, integer]`).
    pub types: Vec<FieldType>,
    /// Whether it must be present.
    pub required: bool,
    /// Where the document lists it.
    pub source: Source,
}

/// JSON types a field may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// A JSON boolean.
    Boolean,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
}

/// One checkable statement of a document.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id within the spec, kebab-case (`instance-ids-limit`).
    pub id: String,
    /// The statement in a sentence.
    pub description: String,
    /// What is checked.
    pub check: Check,
    /// The codes a target may answer when a request breaks the rule; empty for effect rules.
    #[serde(default)]
    pub errors: Vec<ErrorRef>,
    /// Where the document states it.
    pub source: Source,
    /// Set when the rule is our judgement rather than a document's statement: what the
    /// documents leave open, quoting the line that leaves it open. A target breaking only a
    /// judgement is `unspecified` unless the run is `--strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<String>,
    /// Set when the documents neither state the rule nor rule it out (ECM states no OS or
    /// state restriction, though its codes could stand for one): what leaves it open. A case
    /// breaking only open rules is `unspecified` — a target may refuse it with the rule's codes
    /// or accept it — and the generator spends only the unspecified share on such cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    /// The emulator variants (`apiconform serve --list-variants`) that take the other reading
    /// of a `judgement` or `open` rule; required for those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// What a rule checks. Each kind is interpreted by the generator (how to break it), the oracle
/// (what to expect) and, independently, the emulator (how to enforce it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The parameter must be present.
    Required {
        /// Parameter name.
        param: String,
    },
    /// A list holds at most `limit` items.
    MaxItems {
        /// Parameter name.
        param: String,
        /// The limit.
        limit: u32,
    },
    /// A list holds at least one item.
    NonEmpty {
        /// Parameter name.
        param: String,
    },
    /// Every value (or item) matches the parameter's `pattern`.
    Pattern {
        /// Parameter name.
        param: String,
    },
    /// The value has the documented type (a boolean is a boolean, a JSON list is valid JSON).
    ValueType {
        /// Parameter name.
        param: String,
    },
    /// Every named resource exists (in the request's region and product).
    Exists {
        /// Parameter name.
        param: String,
    },
    /// Every named instance runs one of the allowed operating systems.
    InstanceOs {
        /// Parameter naming instances.
        param: String,
        /// Allowed systems.
        allowed: Vec<Os>,
    },
    /// Every named instance is in one of the allowed states, unless the force parameter is true.
    InstanceState {
        /// Parameter naming instances.
        param: String,
        /// Allowed states.
        allowed: Vec<InstanceState>,
        /// A boolean parameter that, when true, lifts the requirement for RUNNING instances
        /// (`ForceStop` shuts a running instance down); other states stay unsupported.
        #[serde(default)]
        unless: Option<String>,
    },
    /// A successful call binds the keys and replaces keys bound before.
    BindsKeys,
    /// A successful call removes the binding of the keys.
    UnbindsKeys,
    /// A successful response has the documented fields and types.
    SuccessShape,
    /// An error response has the family's error shape.
    ErrorShape,
    /// The response body is in the format the request asked for (Alibaba `Format`, XML when
    /// absent) (family rule).
    ResponseFormat,
    /// Per-item results agree with each other (`TotalCount`, `FailCount`, one result per instance).
    PerItemConsistency,
    /// The request is signed with the caller's secret (family rule).
    Signature,
    /// The secret id is known (family rule).
    SecretIdKnown,
    /// The request timestamp is within the window (family rule).
    TimestampWindow {
        /// Allowed skew in seconds.
        seconds: u32,
    },
    /// A nonce is used once within the window (family rule).
    NonceUnique,
    /// Every wire form the spec's `wire` lists is accepted like the SDKs' own.
    WireForms,
    /// Every error code answered is one the documents list for the API: its own table (seed or
    /// current definitions) or its family's common codes. Stated where a seed says its table
    /// lists the business codes and the rest are the common codes.
    DocumentedCode,
    /// Every business parameter is one the API's table defines: a request carrying another (a
    /// misspelt or mis-cased name) is refused with the rule's code (family rule, where a
    /// document gives the family a code for it). The documents rank it against no other rule.
    KnownParameters,
    /// An XML success body's root element is the action's name followed by `Response`
    /// (`<DetachKeyPairResponse>`), exactly (family rule).
    XmlRoot,
    /// Every answer's request id is unique to its request: judged over the run's answers of one
    /// product (a response-set property; no single answer breaks it).
    RequestIdUnique,
    /// The common parameter `Version` names a version the product serves; another is refused
    /// with the rule's code (family rule).
    VersionKnown,
}

impl Check {
    /// The parameter the check is about, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            Check::Required { param }
            | Check::MaxItems { param, .. }
            | Check::NonEmpty { param }
            | Check::Pattern { param }
            | Check::ValueType { param }
            | Check::Exists { param }
            | Check::InstanceOs { param, .. }
            | Check::InstanceState { param, .. } => Some(param),
            Check::BindsKeys
            | Check::UnbindsKeys
            | Check::SuccessShape
            | Check::ErrorShape
            | Check::PerItemConsistency
            | Check::ResponseFormat
            | Check::XmlRoot
            | Check::RequestIdUnique
            | Check::VersionKnown
            | Check::Signature
            | Check::SecretIdKnown
            | Check::TimestampWindow { .. }
            | Check::NonceUnique
            | Check::DocumentedCode
            | Check::KnownParameters
            | Check::WireForms => None,
        }
    }

    /// The kind of check, without its arguments.
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Required { .. } => CheckKind::Required,
            Check::MaxItems { .. } => CheckKind::MaxItems,
            Check::NonEmpty { .. } => CheckKind::NonEmpty,
            Check::Pattern { .. } => CheckKind::Pattern,
            Check::ValueType { .. } => CheckKind::ValueType,
            Check::Exists { .. } => CheckKind::Exists,
            Check::InstanceOs { .. } => CheckKind::InstanceOs,
            Check::InstanceState { .. } => CheckKind::InstanceState,
            Check::BindsKeys => CheckKind::BindsKeys,
            Check::UnbindsKeys => CheckKind::UnbindsKeys,
            Check::SuccessShape => CheckKind::SuccessShape,
            Check::ErrorShape => CheckKind::ErrorShape,
            Check::PerItemConsistency => CheckKind::PerItemConsistency,
            Check::ResponseFormat => CheckKind::ResponseFormat,
            Check::XmlRoot => CheckKind::XmlRoot,
            Check::RequestIdUnique => CheckKind::RequestIdUnique,
            Check::VersionKnown => CheckKind::VersionKnown,
            Check::Signature => CheckKind::Signature,
            Check::SecretIdKnown => CheckKind::SecretIdKnown,
            Check::TimestampWindow { .. } => CheckKind::TimestampWindow,
            Check::NonceUnique => CheckKind::NonceUnique,
            Check::DocumentedCode => CheckKind::DocumentedCode,
            Check::KnownParameters => CheckKind::KnownParameters,
            Check::WireForms => CheckKind::WireForms,
        }
    }

    /// The kind's name as written in spec files.
    pub fn kind_name(&self) -> &'static str {
        self.kind().name()
    }
}

/// A rule kind without its arguments: what code dispatches on where it needs no more than the
/// kind (the rule a response-level judgement uses, a code's `means`). Exhaustive matches over it
/// (and over [`Check`]) are the checklist of what a new kind must say at each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    /// `required`.
    Required,
    /// `max_items`.
    MaxItems,
    /// `non_empty`.
    NonEmpty,
    /// `pattern`.
    Pattern,
    /// `value_type`.
    ValueType,
    /// `exists`.
    Exists,
    /// `instance_os`.
    InstanceOs,
    /// `instance_state`.
    InstanceState,
    /// `binds_keys`.
    BindsKeys,
    /// `unbinds_keys`.
    UnbindsKeys,
    /// `success_shape`.
    SuccessShape,
    /// `error_shape`.
    ErrorShape,
    /// `per_item_consistency`.
    PerItemConsistency,
    /// `response_format`.
    ResponseFormat,
    /// `signature`.
    Signature,
    /// `secret_id_known`.
    SecretIdKnown,
    /// `timestamp_window`.
    TimestampWindow,
    /// `nonce_unique`.
    NonceUnique,
    /// `documented_code`.
    DocumentedCode,
    /// `known_parameters`.
    KnownParameters,
    /// `wire_forms`.
    WireForms,
    /// `xml_root`.
    XmlRoot,
    /// `request_id_unique`.
    RequestIdUnique,
    /// `version_known`.
    VersionKnown,
}

impl CheckKind {
    /// Every kind, in the order of [`Check`].
    pub const ALL: [CheckKind; 24] = [
        CheckKind::Required,
        CheckKind::MaxItems,
        CheckKind::NonEmpty,
        CheckKind::Pattern,
        CheckKind::ValueType,
        CheckKind::Exists,
        CheckKind::InstanceOs,
        CheckKind::InstanceState,
        CheckKind::BindsKeys,
        CheckKind::UnbindsKeys,
        CheckKind::SuccessShape,
        CheckKind::ErrorShape,
        CheckKind::PerItemConsistency,
        CheckKind::ResponseFormat,
        CheckKind::Signature,
        CheckKind::SecretIdKnown,
        CheckKind::TimestampWindow,
        CheckKind::NonceUnique,
        CheckKind::DocumentedCode,
        CheckKind::KnownParameters,
        CheckKind::WireForms,
        CheckKind::XmlRoot,
        CheckKind::RequestIdUnique,
        CheckKind::VersionKnown,
    ];

    /// The name as written in spec files (`check: {kind: max_items}`).
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Required => "required",
            CheckKind::MaxItems => "max_items",
            CheckKind::NonEmpty => "non_empty",
            CheckKind::Pattern => "pattern",
            CheckKind::ValueType => "value_type",
            CheckKind::Exists => "exists",
            CheckKind::InstanceOs => "instance_os",
            CheckKind::InstanceState => "instance_state",
            CheckKind::BindsKeys => "binds_keys",
            CheckKind::UnbindsKeys => "unbinds_keys",
            CheckKind::SuccessShape => "success_shape",
            CheckKind::ErrorShape => "error_shape",
            CheckKind::PerItemConsistency => "per_item_consistency",
            CheckKind::ResponseFormat => "response_format",
            CheckKind::Signature => "signature",
            CheckKind::SecretIdKnown => "secret_id_known",
            CheckKind::TimestampWindow => "timestamp_window",
            CheckKind::NonceUnique => "nonce_unique",
            CheckKind::DocumentedCode => "documented_code",
            CheckKind::KnownParameters => "known_parameters",
            CheckKind::WireForms => "wire_forms",
            CheckKind::XmlRoot => "xml_root",
            CheckKind::RequestIdUnique => "request_id_unique",
            CheckKind::VersionKnown => "version_known",
        }
    }

    /// The kind a spec file names, if there is one.
    pub fn from_name(name: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Operating systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Os {
    /// Linux.
    Linux,
    /// Windows.
    Windows,
}

/// Instance states, as Tencent spells them (Alibaba's `Running`/`Stopped` map onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceState {
    /// Shut down.
    Stopped,
    /// Running.
    Running,
    /// Being created.
    Pending,
    /// Shutting down.
    Stopping,
    /// Booting.
    Starting,
    /// Rebooting.
    Rebooting,
}

impl InstanceState {
    /// Every state.
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Stopped,
        InstanceState::Running,
        InstanceState::Pending,
        InstanceState::Stopping,
        InstanceState::Starting,
        InstanceState::Rebooting,
    ];

    /// The state as world files, journals and reports write it (`RUNNING`): the one spelling
    /// the harness uses.
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Stopped => "STOPPED",
            InstanceState::Running => "RUNNING",
            InstanceState::Pending => "PENDING",
            InstanceState::Stopping => "STOPPING",
            InstanceState::Starting => "STARTING",
            InstanceState::Rebooting => "REBOOTING",
        }
    }

    /// A state read in any case (`RUNNING`, Alibaba's `Running`).
    pub fn from_name(text: &str) -> Option<InstanceState> {
        InstanceState::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
    }
}

/// One code a target may answer for a broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRef {
    /// The error code (`InvalidParameterValue.LimitExceeded`, `4000`).
    pub code: String,
    /// The HTTP status that goes with it, where the family ties codes to statuses (Alibaba).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Where this code is tied to this rule.
    pub source: Source,
    /// Set when no document ties this code to this rule's situation (the code is in a table;
    /// the mapping is ours). Where every code of a rule is such, any error in the family's
    /// envelope passes by default, and `--strict` asks for these codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<String>,
    /// The emulator variants that answer another code here; required with `judgement`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// How the oracle picks among codes when one request breaks several rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Precedence {
    /// The documents state none: any broken rule's code is accepted.
    #[default]
    None,
    /// The first broken rule in this order decides.
    Ordered {
        /// Rule ids, first wins.
        rules: Vec<String>,
        /// Where the order is stated.
        source: Source,
    },
}

/// One row of an error-code table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorCodeEntry {
    /// The code.
    pub code: String,
    /// The table's description, verbatim.
    pub description: String,
    /// HTTP status, where the table gives one.
    #[serde(default)]
    pub status: Option<u16>,
    /// Where the table lists it.
    pub source: Source,
    /// Why no request from outside can produce it; absent when some rule produces it.
    #[serde(default)]
    pub unreachable: Option<String>,
    /// What the code's description asserts about the request: answered for a request that
    /// breaks none of these rules, the code says something false (an instance "does not exist"
    /// that exists), whatever the documents leave open about the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means: Option<Means>,
}

/// The rules a code's description asserts are broken: named by id, or by check kind (a family
/// code such as `MissingParameter` means "some `required` rule of the API is broken").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Means {
    /// Rule ids (of the API or its family).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Check kinds (`required`, `exists`, ...): every rule of the API of that kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

impl Means {
    /// Whether `rule` is one the code asserts broken.
    pub fn covers(&self, rule: &Rule) -> bool {
        self.rules.contains(&rule.id) || self.kinds.iter().any(|k| k == rule.check.kind_name())
    }
}

/// One wire form a document shows for a freedom of the encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireForm {
    /// Which freedom.
    pub freedom: Freedom,
    /// The form as the document writes it: `1` (first list index), the action's spelling
    /// (`unBindInstanceKey`), `upper` (booleans `TRUE`/`FALSE` on forms), `spaced` (`["a", "b"]`).
    pub form: String,
    /// Where the document shows it.
    pub source: Source,
}

/// Freedoms of the encoding where the documents show more than one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Freedom {
    /// The first index of `Name.N` list items on forms (`form: "1"`).
    IndexBase,
    /// The action's name as an example spells it (`form`: the spelling).
    ActionSpelling,
    /// Booleans on forms written upper-case (`form: upper`).
    BooleanSpelling,
    /// A JSON list parameter with a space after each comma (`form: spaced`).
    JsonListSpacing,
}

impl ApiSpec {
    /// The form the documents show for `freedom`, if any.
    pub fn wire_form(&self, freedom: Freedom) -> Option<&WireForm> {
        self.wire.iter().find(|w| w.freedom == freedom)
    }
}

/// A document example, verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// A short name.
    pub name: String,
    /// The request as printed.
    pub request: String,
    /// The response as printed.
    pub response: String,
    /// The response's format as printed.
    pub response_format: ExampleFormat,
    /// Whether the printed response parses as its format (errata explain when it does not).
    pub response_well_formed: bool,
    /// Where it is printed.
    pub source: Source,
}

/// Formats of printed examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExampleFormat {
    /// JSON.
    Json,
    /// XML.
    Xml,
}

/// A contradiction inside a document or between documents.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Erratum {
    /// Unique id.
    pub id: String,
    /// What disagrees with what.
    pub description: String,
    /// Every place involved.
    pub sources: Vec<Source>,
    /// What apiconform does about it: what is generated, what the oracle accepts.
    pub resolution: String,
}

/// A behaviour the documents leave open.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unspecified {
    /// Unique id.
    pub id: String,
    /// The situation, machine-readable, so the generator can produce it and the oracle recognise it.
    pub situation: Situation,
    /// What is left open.
    pub description: String,
    /// What the emulator does.
    pub emulator: String,
    /// What the oracle records (never a failure, but shape checks still apply).
    pub oracle: String,
    /// Where the gap is.
    pub sources: Vec<Source>,
    /// The emulator variants that take another reading of the gap than `emulator` describes
    /// (`apiconform serve --list-variants`); at least one.
    #[serde(default)]
    pub variants: Vec<String>,
}

/// Situations the documents leave open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    /// One request breaks several rules and no precedence is documented.
    MultipleViolations,
    /// The same id twice in one batch.
    DuplicateIds,
    /// Unbinding a key that is not bound to the instance.
    UnbindNotBound,
    /// A RUNNING instance with the force flag false or absent.
    RunningWithoutForce,
    /// A RUNNING instance with the force flag true: what state it ends in.
    RunningWithForce,
    /// More than one key for an instance where the document does not say how many may be bound.
    SeveralKeys,
    /// Array items numbered from 1 instead of 0 on a form.
    OneBasedIndex,
    /// A key pair that exists in another region than the request's.
    OtherRegion,
}

/// What the APIs of one wire family share (`specs/families/<family>.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// Which family.
    pub family: FamilyId,
    /// Its full name.
    pub name: String,
    /// Every document the family spec cites.
    pub documents: Vec<DocumentRef>,
    /// Parameters every request carries (`Action`, `Timestamp`, `Signature`, ...).
    pub common_parameters: Vec<CommonParameter>,
    /// Signature schemes the family accepts.
    pub signatures: Vec<SignatureScheme>,
    /// How responses are wrapped.
    pub envelope: Envelope,
    /// Rules every API of the family obeys (authentication, shapes).
    pub rules: Vec<Rule>,
    /// The family's common error codes.
    pub error_codes: Vec<ErrorCodeEntry>,
    /// The code (one of `error_codes`) the family answers to a caller over a documented request
    /// rate: what `apiconform run`'s rate-limit probe expects. Absent when the family states none.
    #[serde(default)]
    pub throttling_code: Option<String>,
    /// Contradictions between sources about the family.
    #[serde(default)]
    pub errata: Vec<Erratum>,
}

impl FamilySpec {
    /// Whether `code` is the family's throttling code or a refinement of it (Alibaba's
    /// `Throttling.User` under `Throttling`): the one definition the runner's retries, the
    /// discovery's back-off and the rate-limit probe read.
    pub fn is_throttling(&self, code: &str) -> bool {
        self.throttling_code.as_deref().is_some_and(|t| {
            code == t
                || code
                    .strip_prefix(t)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// A parameter shared by a family's requests.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommonParameter {
    /// Name on the wire (or header, for TC3: `X-TC-Action`).
    pub name: String,
    /// Whether every request must carry it.
    pub required: bool,
    /// The document's description.
    pub description: String,
    /// Where it is documented.
    pub source: Source,
}

/// A signature scheme.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureScheme {
    /// Id (`tc3-hmac-sha256`, `v1-hmac-sha1`, `rpc-hmac-sha1`, `acs3-hmac-sha256`).
    pub id: String,
    /// HTTP methods it is used with.
    pub methods: Vec<String>,
    /// How the string to sign is built, in brief.
    pub description: String,
    /// Where it is specified (worked examples live in `reference/signature-vectors/`).
    pub source: Source,
}

/// Response envelopes of the three families.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Envelope {
    /// `{"Response": {..., "RequestId"}}`, errors as `Response.Error.{Code,Message}` with HTTP 200.
    TencentResponse {
        /// Where it is documented.
        source: Source,
    },
    /// `{"code": 0, "message": "", ...}`, HTTP 200.
    TencentCodeMessage {
        /// Where it is documented.
        source: Source,
    },
    /// Fields at the top level (JSON) or under `<ActionResponse>` (XML); errors carry
    /// `Code`, `Message`, `RequestId` with a non-2xx status.
    AliyunTopLevel {
        /// Where it is documented.
        source: Source,
    },
}

impl Envelope {
    /// Whether the family documents its errors with a non-2xx HTTP status (Alibaba: "SDKs raise
    /// only on a non-2xx status"); the Tencent families answer errors with HTTP 200.
    pub fn errors_are_non_2xx(&self) -> bool {
        match self {
            Envelope::TencentResponse { .. } | Envelope::TencentCodeMessage { .. } => false,
            Envelope::AliyunTopLevel { .. } => true,
        }
    }
}
