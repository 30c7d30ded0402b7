//! Reading a BPF ELF object with `object`: the facts BTF does not hold (true offsets of
//! globals, initial bytes of data sections, program symbols, license). Deterministic and
//! unprivileged: nothing here touches the kernel.

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF object ({0})")]
    NotElf(String),
    #[error("not a BPF object (machine is {0:?}); compile with `clang -target bpf`")]
    NotBpf(object::Architecture),
    #[error("big-endian BPF objects are not supported; compile with `-target bpfel` or `bpf`")]
    BigEndian,
    #[error("no BTF (.BTF section); compile with `-g`")]
    NoBtf,
}

/// A data symbol (a global variable) as the symbol table places it.
#[derive(Debug, Clone)]
pub struct DataSymbol {
    pub section: String,
    pub offset: u64,
    pub size: u64,
}

/// A BPF program: a function symbol in an executable section other than `.text`.
#[derive(Debug, Clone)]
pub struct ProgSymbol {
    pub name: String,
    pub section: String,
    pub offset: u64,
}

/// What the packer needs from the ELF, copied out so no borrow of the bytes remains.
#[derive(Debug)]
pub struct ElfInfo {
    pub btf: Vec<u8>,
    pub license: Option<String>,
    /// Data symbols by name.
    pub data_symbols: Vec<(String, DataSymbol)>,
    pub programs: Vec<ProgSymbol>,
    /// Initial bytes of each data section; `None` for `.bss`-like sections (all zero).
    pub section_bytes: Vec<(String, Option<Vec<u8>>, u64)>,
}

impl ElfInfo {
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfError> {
        let file = object::File::parse(bytes).map_err(|e| ElfError::NotElf(e.to_string()))?;
        if file.architecture() != object::Architecture::Bpf {
            return Err(ElfError::NotBpf(file.architecture()));
        }
        if !file.is_little_endian() {
            return Err(ElfError::BigEndian);
        }
        let btf = file
            .section_by_name(".BTF")
            .and_then(|s| s.data().ok())
            .map(<[u8]>::to_vec)
            .ok_or(ElfError::NoBtf)?;
        let license = file
            .section_by_name("license")
            .and_then(|s| s.data().ok())
            .map(|d| {
                let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
                String::from_utf8_lossy(&d[..end]).into_owned()
            });

        let mut section_bytes = Vec::new();
        for section in file.sections() {
            let name = section.name().unwrap_or_default().to_string();
            let data = match section.kind() {
                SectionKind::UninitializedData | SectionKind::UninitializedTls => None,
                _ => Some(section.data().unwrap_or_default().to_vec()),
            };
            section_bytes.push((name, data, section.size()));
        }

        let mut data_symbols = Vec::new();
        let mut programs = Vec::new();
        for sym in file.symbols() {
            let (Ok(name), Some(index)) = (sym.name(), sym.section_index()) else {
                continue;
            };
            let Ok(section) = file.section_by_index(index) else {
                continue;
            };
            let section_name = section.name().unwrap_or_default().to_string();
            let executable = match section.flags() {
                SectionFlags::Elf { sh_flags } => {
                    sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                }
                _ => false,
            };
            match sym.kind() {
                SymbolKind::Text if executable && section_name != ".text" && sym.is_global() => {
                    programs.push(ProgSymbol {
                        name: name.to_string(),
                        section: section_name,
                        offset: sym.address(),
                    });
                }
                SymbolKind::Data if !name.is_empty() => data_symbols.push((
                    name.to_string(),
                    DataSymbol {
                        section: section_name,
                        offset: sym.address(),
                        size: sym.size(),
                    },
                )),
                _ => {}
            }
        }
        programs.sort_by(|a, b| (&a.section, a.offset).cmp(&(&b.section, b.offset)));
        Ok(ElfInfo {
            btf,
            license,
            data_symbols,
            programs,
            section_bytes,
        })
    }

    /// The data symbol `name` placed in `section`.
    pub fn data_symbol(&self, name: &str, section: &str) -> Option<&DataSymbol> {
        self.data_symbols
            .iter()
            .find(|(n, s)| n == name && s.section == section)
            .map(|(_, s)| s)
    }

    /// Initial bytes of `section` (`None` when it is zero-filled), and its size.
    pub fn section(&self, name: &str) -> Option<(Option<&[u8]>, u64)> {
        self.section_bytes
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, data, size)| (data.as_deref(), *size))
    }
}
