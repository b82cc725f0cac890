//! Whether a program can take `LD_PRELOAD`: an ELF executable with an
//! interpreter (`PT_INTERP`, the dynamic loader) can; a static one
//! (static-pie included, which has a dynamic section but no loader) cannot.
//! A `#!` script is judged by its interpreter. Reads headers only.

use std::io::Read;
use std::path::{Path, PathBuf};

/// What a program's first bytes say about preloading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// ELF with a `PT_INTERP` program header: the loader honours LD_PRELOAD.
    Dynamic,
    /// ELF without one: nothing is preloaded into it.
    Static,
    /// `#!` script whose interpreter (the path named) is static.
    StaticInterpreter(PathBuf),
    /// Neither ELF nor script (or unreadable): rift cannot tell.
    Unknown,
}

const PT_INTERP: u32 = 3;

/// Reads `path`'s ELF headers (or its `#!` line, one level deep).
pub fn linkage(path: &Path) -> Linkage {
    linkage_depth(path, 0)
}

fn linkage_depth(path: &Path, depth: usize) -> Linkage {
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    if read.is_err() {
        return Linkage::Unknown;
    }
    if head.starts_with(b"#!") && depth < 2 {
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let Some(interp) = text.split_whitespace().next() else {
            return Linkage::Unknown;
        };
        let interp = PathBuf::from(interp);
        return match linkage_depth(&interp, depth + 1) {
            Linkage::Static | Linkage::StaticInterpreter(_) => Linkage::StaticInterpreter(interp),
            Linkage::Dynamic => Linkage::Dynamic,
            Linkage::Unknown => Linkage::Unknown,
        };
    }
    match has_interpreter(path, &head) {
        Some(true) => Linkage::Dynamic,
        Some(false) => Linkage::Static,
        None => Linkage::Unknown,
    }
}

/// `Some(true)` when the ELF file has a `PT_INTERP` header; `None` when it
/// is not (readable) ELF. `head` holds the file's first bytes; program
/// headers past them are read from `path`.
fn has_interpreter(path: &Path, head: &[u8]) -> Option<bool> {
    if head.len() < 52 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u16_at = |b: &[u8], at: usize| -> Option<u64> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if little {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        }))
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u64> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if little {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        }))
    };
    let u64_at = |b: &[u8], at: usize| -> Option<u64> {
        let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(s)
        } else {
            u64::from_be_bytes(s)
        })
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            u64_at(head, 0x20)?,
            u16_at(head, 0x36)?,
            u16_at(head, 0x38)?,
        )
    } else {
        (
            u32_at(head, 0x1c)?,
            u16_at(head, 0x2a)?,
            u16_at(head, 0x2c)?,
        )
    };
    if phentsize < 4 || phnum == 0 {
        return Some(false);
    }
    let start = usize::try_from(phoff).ok()?;
    let len = usize::try_from(phentsize.checked_mul(phnum)?).ok()?;
    let end = start.checked_add(len)?;
    let table: Vec<u8> = if end <= head.len() {
        head[start..end].to_vec()
    } else {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::open(path).ok()?;
        f.seek(SeekFrom::Start(phoff)).ok()?;
        let mut buf = vec![0; len.min(1 << 20)];
        f.read_exact(&mut buf).ok()?;
        buf
    };
    let step = usize::try_from(phentsize).ok()?;
    Some(
        table
            .chunks(step)
            .any(|ph| u32_at(ph, 0) == Some(u64::from(PT_INTERP))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF header with the given program
    /// header types.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    /// The same for 32-bit big-endian.
    fn elf32be(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 52];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1;
        b[5] = 2;
        b[0x1c..0x20].copy_from_slice(&52u32.to_be_bytes());
        b[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
        b[0x2c..0x2e].copy_from_slice(&(types.len() as u16).to_be_bytes());
        for t in types {
            let mut ph = vec![0u8; 32];
            ph[..4].copy_from_slice(&t.to_be_bytes());
            b.extend(ph);
        }
        b
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn crafted_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // PT_LOAD, PT_INTERP, PT_DYNAMIC: an ordinary dynamic executable.
        assert_eq!(
            linkage(&write(d, "dyn", &elf64(&[1, 3, 2]))),
            Linkage::Dynamic
        );
        // PT_LOAD and PT_DYNAMIC without an interpreter: static-pie.
        assert_eq!(linkage(&write(d, "spie", &elf64(&[1, 2]))), Linkage::Static);
        assert_eq!(linkage(&write(d, "st", &elf64(&[1]))), Linkage::Static);
        assert_eq!(
            linkage(&write(d, "dyn32", &elf32be(&[6, 3]))),
            Linkage::Dynamic
        );
        assert_eq!(linkage(&write(d, "st32", &elf32be(&[1]))), Linkage::Static);
        // Truncated program headers, garbage, nothing at all.
        let mut cut = elf64(&[1, 3]);
        cut.truncate(80);
        assert_eq!(linkage(&write(d, "cut", &cut)), Linkage::Unknown);
        assert_eq!(linkage(&write(d, "txt", b"hello")), Linkage::Unknown);
        assert_eq!(linkage(&d.join("missing")), Linkage::Unknown);
        // A script is judged by its interpreter.
        let st = write(d, "static-sh", &elf64(&[1]));
        let script = format!("#!{} -e\necho hi\n", st.display());
        assert_eq!(
            linkage(&write(d, "script", script.as_bytes())),
            Linkage::StaticInterpreter(st)
        );
        let dy = write(d, "dyn-sh", &elf64(&[3]));
        let script = format!("#!{}\n", dy.display());
        assert_eq!(
            linkage(&write(d, "script2", script.as_bytes())),
            Linkage::Dynamic
        );
    }

    #[test]
    fn rift_itself_is_dynamic() {
        if let Ok(exe) = std::env::current_exe() {
            assert_eq!(linkage(&exe), Linkage::Dynamic);
        }
    }
}
