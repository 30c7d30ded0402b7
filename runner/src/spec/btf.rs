//! The one BTF walker. It strips typedefs and qualifiers, computes layouts and names types
//! the way C spells them. The packer, the flag generator and the event decoder all see BTF
//! only through this module, so they cannot disagree about a layout.

use std::collections::BTreeMap;

use btf_rs::{BtfType, Type as B};
use fallible_iterator::FallibleIterator;

use crate::spec::types::{sign_extend, Bitfield, EnumValue, Kind, Member, Shown, Type};
use crate::spec::vocab::{Annotation, AnnotationError, Target};

/// A type chain longer than this is treated as a loop in corrupt BTF.
const MAX_DEPTH: usize = 64;
/// The most nodes one resolved type may have: nesting that doubles at every level must
/// not exhaust memory.
const MAX_NODES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("BTF type id {0} does not exist")]
    BadId(u32),
    #[error("BTF type chain starting at id {0} is too deep (a loop?)")]
    TooDeep(u32),
    #[error("BTF type id {0} expands to more than {MAX_NODES} members and elements")]
    TooLarge(u32),
    #[error("`{c}` has no layout ({why})")]
    NoLayout { c: String, why: &'static str },
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
}

type Result<T> = std::result::Result<T, BtfError>;

/// An enum's kind; its raw values are `bits` wide and sign-extended when it is signed.
fn enum_kind(
    size: usize,
    signed: bool,
    bits: u32,
    values: impl Iterator<Item = (String, u64)>,
) -> Kind {
    let value = |raw: u64| {
        if signed {
            i128::from(sign_extend(raw, bits))
        } else {
            i128::from(raw)
        }
    };
    Kind::Enum {
        size: size as u32,
        signed,
        values: values
            .map(|(name, raw)| EnumValue {
                name,
                value: value(raw),
            })
            .collect(),
    }
}

/// A `DATASEC` and the variables it lists.
#[derive(Debug)]
pub struct Datasec {
    pub name: String,
    pub vars: Vec<Var>,
}

#[derive(Debug)]
pub struct Var {
    pub id: u32,
    pub name: String,
    pub type_id: u32,
    /// Declared `static`: private to the program.
    pub is_static: bool,
}

/// A BPF object's BTF, parsed once, with its declaration tags indexed by target.
pub struct ObjectBtf {
    btf: btf_rs::Btf,
    /// Index = type id; entry 0 is `void`.
    types: Vec<B>,
    /// Declaration tags (`btf_decl_tag("...")`) on a type, a variable or a function,
    /// keyed by the tagged type id.
    tags: BTreeMap<u32, Vec<String>>,
    /// Declaration tags on a struct or union member, keyed by (struct id, member index).
    /// Tags on function parameters are not kept.
    member_tags: BTreeMap<(u32, u32), Vec<String>>,
}

impl ObjectBtf {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // btf-rs asserts on some impossible headers; corrupt input must not panic us.
        let parsed = std::panic::catch_unwind(|| Self::parse_inner(bytes));
        parsed.unwrap_or_else(|_| Err(BtfError::Malformed("unreadable type section".into())))
    }

    fn parse_inner(bytes: &[u8]) -> Result<Self> {
        let btf = btf_rs::Btf::from_bytes(bytes).map_err(|e| BtfError::Malformed(e.to_string()))?;
        // The iterator of a base section starts with `void`, id 0.
        let mut types = Vec::new();
        let mut iter = btf.type_iter();
        while let Some(ty) = iter
            .next()
            .map_err(|e| BtfError::Malformed(e.to_string()))?
        {
            types.push(ty);
        }
        if !matches!(types.first(), Some(B::Void)) {
            types.insert(0, B::Void);
        }
        let mut this = ObjectBtf {
            btf,
            types,
            tags: BTreeMap::new(),
            member_tags: BTreeMap::new(),
        };
        let mut tags: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut member_tags: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
        for ty in &this.types {
            let B::DeclTag(tag) = ty else { continue };
            let Some(target) = tag.get_type_id() else {
                continue;
            };
            let text = this.name_of(tag);
            match tag.component_index() {
                None => tags.entry(target).or_default().push(text),
                Some(i) if matches!(this.get(target), Ok(B::Struct(_) | B::Union(_))) => {
                    member_tags.entry((target, i)).or_default().push(text)
                }
                Some(_) => {}
            }
        }
        this.tags = tags;
        this.member_tags = member_tags;
        Ok(this)
    }

    fn get(&self, id: u32) -> Result<&B> {
        self.types.get(id as usize).ok_or(BtfError::BadId(id))
    }

    fn name_of(&self, ty: &dyn BtfType) -> String {
        self.btf.resolve_name(ty).unwrap_or_default()
    }

    /// The name of a type, variable or function (empty when anonymous).
    pub fn name(&self, id: u32) -> String {
        match self.get(id) {
            Ok(ty) => ty
                .as_btf_type()
                .map(|t| self.name_of(t))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The raw BTF entry `id`, for code that writes C declarations (`spec::kfuncs`).
    pub(crate) fn entry(&self, id: u32) -> Result<&B> {
        self.get(id)
    }

    /// The name of a named part of an entry: a parameter, a member.
    pub(crate) fn part_name(&self, part: &dyn BtfType) -> String {
        self.name_of(part)
    }

    /// Every id that carries declaration tags, with its tags in BTF order.
    pub fn tagged(&self) -> impl Iterator<Item = (u32, &[String])> {
        self.tags.iter().map(|(id, tags)| (*id, tags.as_slice()))
    }

    /// Every struct member that carries declaration tags: (struct id, member index, tags).
    pub fn member_tagged(&self) -> impl Iterator<Item = (u32, u32, &[String])> {
        self.member_tags
            .iter()
            .map(|((id, i), tags)| (*id, *i, tags.as_slice()))
    }

    /// Whether `id` is a typedef.
    pub fn is_typedef(&self, id: u32) -> bool {
        matches!(self.get(id), Ok(B::Typedef(_)))
    }

    /// Every `DATASEC`, in BTF order.
    pub fn datasecs(&self) -> Vec<Datasec> {
        let mut out = Vec::new();
        for ty in &self.types {
            let B::Datasec(sec) = ty else { continue };
            let vars = sec
                .variables
                .iter()
                .filter_map(|info| {
                    let id = info.get_type_id()?;
                    let B::Var(var) = self.get(id).ok()? else {
                        return None;
                    };
                    Some(Var {
                        id,
                        name: self.name_of(var),
                        type_id: var.get_type_id()?,
                        is_static: var.is_static(),
                    })
                })
                .collect();
            out.push(Datasec {
                name: self.name_of(sec),
                vars,
            });
        }
        out
    }

    /// Ids of functions (`BTF_KIND_FUNC`) with their names.
    pub fn funcs(&self) -> Vec<(u32, String)> {
        (0..self.types.len() as u32)
            .filter(|&id| matches!(self.types[id as usize], B::Func(_)))
            .map(|id| (id, self.name(id)))
            .collect()
    }

    /// Ids of the named structs called `name`.
    pub fn structs_named(&self, name: &str) -> Vec<u32> {
        (0..self.types.len() as u32)
            .filter(|&id| matches!(self.types[id as usize], B::Struct(_)) && self.name(id) == name)
            .collect()
    }

    /// Names of every named struct, sorted and deduplicated.
    pub fn struct_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.types.len() as u32)
            .filter(|&id| matches!(self.types[id as usize], B::Struct(_)))
            .map(|id| self.name(id))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The struct a pointer-typed `id` points to, by name.
    fn pointee_struct(&self, id: u32) -> Option<String> {
        let target = self.pointee(id).ok()??;
        let (sid, ty) = self.strip(target).ok()?;
        matches!(ty, B::Struct(_))
            .then(|| self.name(sid))
            .filter(|n| !n.is_empty())
    }

    /// Structs anchored by pointer variables in `section` (see `compile.rs`), in order.
    pub fn keep_structs(&self, section: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for sec in self.datasecs().into_iter().filter(|s| s.name == section) {
            for var in sec.vars {
                if let Some(name) = self.pointee_struct(var.type_id) {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        names
    }

    /// Structs that function parameters point to: the context types of programs.
    pub fn param_structs(&self) -> Vec<String> {
        let mut names = Vec::new();
        for ty in &self.types {
            let B::FuncProto(proto) = ty else { continue };
            for param in &proto.parameters {
                if let Some(name) = param.get_type_id().and_then(|id| self.pointee_struct(id)) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Whether `volatile` qualifies type `id`, anywhere along its typedefs and qualifiers
    /// (for an array, its elements': C puts `const volatile char s[16]`'s qualifiers there).
    pub fn is_volatile(&self, mut id: u32) -> Result<bool> {
        for _ in 0..MAX_DEPTH {
            let ty = self.get(id)?;
            match ty {
                B::Volatile(_) => return Ok(true),
                B::Typedef(_) | B::Const(_) | B::Restrict(_) | B::TypeTag(_) | B::Array(_) => {
                    id = ty.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0);
                }
                _ => return Ok(false),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// Follow typedefs, qualifiers and type tags down to the type that has a shape.
    pub fn strip(&self, mut id: u32) -> Result<(u32, &B)> {
        for _ in 0..MAX_DEPTH {
            let ty = self.get(id)?;
            match ty {
                B::Typedef(_) | B::Const(_) | B::Volatile(_) | B::Restrict(_) | B::TypeTag(_) => {
                    id = ty.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0);
                }
                _ => return Ok((id, ty)),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// The member list of a struct or union `id` (after stripping), with each member's
    /// name and type id.
    pub fn members(&self, id: u32) -> Result<Vec<(String, u32)>> {
        match self.strip(id)?.1 {
            B::Struct(s) | B::Union(s) => Ok(s
                .members
                .iter()
                .map(|m| (self.name_of(m), m.get_type_id().unwrap_or(0)))
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// For the map-definition idioms of `bpf_helpers.h`: `__uint(name, N)` is a pointer to
    /// an array of N elements, `__type(name, T)` a pointer to T.
    pub fn pointee(&self, id: u32) -> Result<Option<u32>> {
        match self.strip(id)?.1 {
            B::Ptr(p) => Ok(Some(p.get_type_id().unwrap_or(0))),
            _ => Ok(None),
        }
    }

    /// The N of `__uint(name, N)`.
    pub fn uint_member(&self, id: u32) -> Result<Option<u32>> {
        let Some(target) = self.pointee(id)? else {
            return Ok(None);
        };
        match self.strip(target)?.1 {
            B::Array(a) => Ok(Some(a.len() as u32)),
            _ => Ok(None),
        }
    }

    /// How C spells type `id`, typedef names kept and qualifiers dropped.
    pub fn c_name(&self, id: u32) -> Result<String> {
        self.c_name_depth(id, 0)
    }

    fn c_name_depth(&self, id: u32, depth: usize) -> Result<String> {
        if depth > MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        let ty = self.get(id)?;
        let inner = || ty.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0);
        let tagged = |tag: &str| {
            let name = self.name(id);
            format!("{tag} {}", if name.is_empty() { "<anon>" } else { &name })
        };
        Ok(match ty {
            B::Void => "void".into(),
            B::Struct(_) => tagged("struct"),
            B::Union(_) => tagged("union"),
            B::Enum(_) | B::Enum64(_) => tagged("enum"),
            B::Fwd(f) if f.is_union() => tagged("union"),
            B::Fwd(_) => tagged("struct"),
            B::Const(_) | B::Volatile(_) | B::Restrict(_) | B::TypeTag(_) => {
                self.c_name_depth(inner(), depth + 1)?
            }
            B::Ptr(_) => match self.get(inner())? {
                B::FuncProto(_) => "function pointer".into(),
                _ => format!("{} *", self.c_name_depth(inner(), depth + 1)?),
            },
            B::Array(a) => {
                let elem = self.c_name_depth(inner(), depth + 1)?;
                match elem.find('[') {
                    Some(at) => format!("{}[{}]{}", &elem[..at], a.len(), &elem[at..]),
                    None => format!("{elem}[{}]", a.len()),
                }
            }
            B::FuncProto(_) => "function".into(),
            _ => self.name(id),
        })
    }

    /// How member `index` of struct `parent` (spelled `c`), of type `ty`, is shown: its own
    /// `runner:format`/`runner:names` tag, else the tag of the first typedef on its type's
    /// chain (through arrays, for the elements), if any.
    fn member_shown(
        &self,
        parent: u32,
        index: u32,
        ty: u32,
        c: &str,
        name: &str,
    ) -> Result<Option<Shown>> {
        let what = || format!("member `{name}` of `{c}`");
        if let Some(tags) = self.member_tags.get(&(parent, index)) {
            if let Some(shown) = shown_of(tags, &what())? {
                return Ok(Some(shown));
            }
        }
        let mut id = ty;
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t {
                B::Typedef(_) => {
                    if let Some(tags) = self.tags.get(&id) {
                        let what = format!("typedef `{}` (of {})", self.name(id), what());
                        if let Some(shown) = shown_of(tags, &what)? {
                            return Ok(Some(shown));
                        }
                    }
                }
                B::Const(_) | B::Volatile(_) | B::Restrict(_) | B::TypeTag(_) | B::Array(_) => {}
                _ => return Ok(None),
            }
            id = t.as_btf_type().and_then(|t| t.get_type_id()).unwrap_or(0);
        }
        Err(BtfError::TooDeep(ty))
    }

    /// The resolved type `id`: its C spelling, kind and full layout.
    pub fn resolve(&self, id: u32) -> Result<Type> {
        let mut budget = MAX_NODES;
        self.resolve_depth(id, 0, &mut budget).map_err(|e| match e {
            BtfError::TooLarge(_) => BtfError::TooLarge(id),
            e => e,
        })
    }

    fn resolve_depth(&self, id: u32, depth: usize, budget: &mut usize) -> Result<Type> {
        if depth > MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        *budget = budget.checked_sub(1).ok_or(BtfError::TooLarge(id))?;
        let c = self.c_name(id)?;
        let (base, ty) = self.strip(id)?;
        let no_layout = |why| BtfError::NoLayout { c: c.clone(), why };
        let kind = match ty {
            B::Int(i) => {
                let size = i.size() as u32;
                if i.is_bool() {
                    Kind::Bool { size }
                } else if size == 1 && c == "char" && self.name(base) == "char" {
                    Kind::Char {
                        signed: i.is_signed(),
                    }
                } else {
                    Kind::Int {
                        size,
                        signed: i.is_signed(),
                    }
                }
            }
            B::Float(f) => Kind::Float {
                size: f.size() as u32,
            },
            B::Enum(e) => {
                let values = e
                    .members
                    .iter()
                    .map(|m| (self.name_of(m), u64::from(m.val())));
                enum_kind(e.size(), e.is_signed(), 32, values)
            }
            B::Enum64(e) => {
                let values = e.members.iter().map(|m| (self.name_of(m), m.val()));
                enum_kind(e.size(), e.is_signed(), 64, values)
            }
            B::Array(a) => Kind::Array {
                len: a.len() as u32,
                elem: Box::new(self.resolve_depth(
                    a.get_type_id().unwrap_or(0),
                    depth + 1,
                    budget,
                )?),
            },
            B::Struct(s) | B::Union(s) => {
                let mut members = Vec::with_capacity(s.members.len());
                for (i, m) in s.members.iter().enumerate() {
                    let bits = m.bitfield_size().unwrap_or(0);
                    let bit_offset = m.bit_offset();
                    let name = self.name_of(m);
                    let member_ty = m.get_type_id().unwrap_or(0);
                    members.push(Member {
                        shown: self.member_shown(base, i as u32, member_ty, &c, &name)?,
                        name,
                        offset: bit_offset / 8,
                        bitfield: (bits > 0).then_some(Bitfield { bit_offset, bits }),
                        ty: self.resolve_depth(member_ty, depth + 1, budget)?,
                    });
                }
                let size = s.size() as u32;
                if matches!(ty, B::Struct(_)) {
                    Kind::Struct { size, members }
                } else {
                    Kind::Union { size, members }
                }
            }
            B::Ptr(_) => Kind::Pointer { size: 8 },
            B::Fwd(_) => return Err(no_layout("only declared, never defined")),
            B::Void => return Err(no_layout("void")),
            B::FuncProto(_) | B::Func(_) => return Err(no_layout("a function")),
            _ => return Err(no_layout("not a data type")),
        };
        Ok(Type { c, kind })
    }
}

/// The format among `runner:` tags on a member or a typedef (`what`, for errors); other
/// `runner:` tags there are errors, tags outside the namespace are not ours.
fn shown_of(tags: &[String], what: &str) -> Result<Option<Shown>> {
    let mut shown = None;
    for tag in tags {
        match Annotation::parse(tag, Target::Value, what) {
            Some(Ok(Annotation::Format { format, on_request })) => {
                shown = Some(Shown::format(format, on_request))
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
    Ok(shown)
}
