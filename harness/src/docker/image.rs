//! A minimal image from a host binary: the binary, its dynamic loader and
//! the shared libraries it links, each at its host path, plus empty `/tmp`
//! and `/data`: one layer, written by rift as an image archive (what
//! `docker save` writes: `manifest.json`, the image config, the layer) and
//! loaded through the engine's image-load API. No builder, no registry.
//! The image carries the run's labels and is tagged
//! `rift-run/<run id>/<name>:latest`.
//!
//! The libraries are those the binary's own loader lists (`<loader>
//! --list <binary>`, what `ldd` does; the loader maps them but runs no code
//! of the binary). Libraries opened later with `dlopen` (NSS modules, for
//! instance) are not seen; pass them as `extra_files`.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{DockerError, Engine, RunLabels};

/// A local image reference (`repository:tag` or an id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(pub String);

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tag rift gives the image `name` of run `run_id`.
pub fn image_tag(run_id: &str, name: &str) -> String {
    format!(
        "rift-run/{}/{}:latest",
        reference_component(run_id),
        reference_component(name)
    )
}

/// `s` as one path component of an image reference: lowercase ASCII
/// letters and digits, runs of anything else turned into one `-`.
pub fn reference_component(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// Builds an image holding `binary` (at its host path), its loader and
/// libraries, and `extra_files` (each at its host path, with its libraries),
/// with empty `/tmp` and `/data`. `name` becomes part of the tag.
pub async fn build_image(
    e: &Engine,
    binary: &Path,
    extra_files: &[PathBuf],
    labels: &RunLabels,
    name: &str,
) -> Result<ImageRef, DockerError> {
    let tag = image_tag(&labels.run_id, name);
    let mut wanted = vec![binary.to_path_buf()];
    wanted.extend(extra_files.iter().cloned());
    let image_labels = labels.to_map(None);
    let archive_tag = tag.clone();
    let archive = tokio::task::spawn_blocking(move || {
        let layer = rootfs_layer(&wanted)?;
        image_archive(&layer, &archive_tag, &image_labels)
    })
    .await
    .map_err(|join| DockerError::Libraries {
        path: binary.to_path_buf(),
        reason: format!("the image archive task failed: {join}"),
    })??;
    let options = bollard::query_parameters::ImportImageOptions {
        quiet: true,
        platform: None,
    };
    let mut progress = e
        .client()
        .import_image(options, bollard::body_full(archive.into()), None);
    while let Some(item) = progress.next().await {
        if let Err(err) = item {
            return Err(DockerError::Build {
                image: tag,
                message: err.to_string(),
            });
        }
    }
    Ok(ImageRef(tag))
}

/// The engine's name for this machine's architecture.
fn engine_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An image archive as the engine's image-load API takes it: one layer,
/// a config with `labels`, and `tag`.
fn image_archive(
    layer: &[u8],
    tag: &str,
    labels: &HashMap<String, String>,
) -> Result<Vec<u8>, DockerError> {
    let layer_hex = hex(&Sha256::digest(layer));
    let config = serde_json::json!({
        "architecture": engine_arch(),
        "os": "linux",
        "config": {
            "Labels": labels,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_hex}")] },
        "history": [{ "created_by": "rift: a binary, its loader and libraries" }],
    });
    let config = config.to_string().into_bytes();
    let config_name = format!("{}.json", hex(&Sha256::digest(&config)));
    let layer_name = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": [layer_name],
    }])
    .to_string()
    .into_bytes();
    let mut tar = tar::Builder::new(Vec::new());
    append_dir(&mut tar, &layer_hex, 0o755)?;
    append_bytes(&mut tar, &layer_name, layer, 0o644)?;
    append_bytes(&mut tar, &config_name, &config, 0o644)?;
    append_bytes(&mut tar, "manifest.json", &manifest, 0o644)?;
    tar.into_inner().map_err(|source| DockerError::Io {
        path: PathBuf::from("<image archive>"),
        source,
    })
}

/// Whether the engine has `image` locally.
pub async fn image_exists(e: &Engine, image: &str) -> Result<bool, DockerError> {
    match e.client().inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(DockerError::Api {
            what: format!("inspect image {image}"),
            source,
        }),
    }
}

/// The image's one layer: every file wanted, its loader and libraries at
/// their host paths, their directories, an empty `/tmp` and `/data`.
fn rootfs_layer(wanted: &[PathBuf]) -> Result<Vec<u8>, DockerError> {
    let mut files = BTreeSet::new();
    for path in wanted {
        let path = absolute(path)?;
        for dep in shared_libraries(&path)? {
            files.insert(dep);
        }
        files.insert(path);
    }
    // The loader's cache names libraries outside its default directories
    // (those of /etc/ld.so.conf.d); with it the image's loader finds them
    // at the same paths as the host's did.
    let cache = Path::new("/etc/ld.so.cache");
    if !files.is_empty() && cache.is_file() {
        files.insert(cache.to_path_buf());
    }
    let mut dirs = BTreeSet::new();
    for file in &files {
        let mut up = file.parent();
        while let Some(dir) = up.filter(|d| *d != Path::new("/")) {
            dirs.insert(dir.to_path_buf());
            up = dir.parent();
        }
    }
    // `/tmp` and `/data` get their own modes, once: a binary that lives
    // under /tmp (a clone there) must not add a second `tmp` entry, which
    // the engine refuses ("duplicates of file paths not supported").
    dirs.remove(Path::new("/tmp"));
    dirs.remove(Path::new("/data"));
    let mut tar = tar::Builder::new(Vec::new());
    append_dir(&mut tar, "tmp", 0o1777)?;
    append_dir(&mut tar, "data", 0o777)?;
    for dir in &dirs {
        let rel = dir.strip_prefix("/").unwrap_or(dir);
        append_dir(&mut tar, &rel.to_string_lossy(), 0o755)?;
    }
    for file in &files {
        let inside = file.strip_prefix("/").unwrap_or(file);
        // Follows symlinks: the image holds the file's content at the path
        // the loader named.
        let io = |source| DockerError::Io {
            path: file.clone(),
            source,
        };
        let mut f = std::fs::File::open(file).map_err(io)?;
        let meta = f.metadata().map_err(io)?;
        // A plain header: the tar crate would write a sparse file (a
        // linker's output often is one) as a GNU sparse entry, which the
        // engine refuses.
        let mut h = tar::Header::new_gnu();
        h.set_size(meta.len());
        h.set_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, inside, &mut f).map_err(io)?;
    }
    tar.into_inner().map_err(|source| DockerError::Io {
        path: PathBuf::from("<image layer>"),
        source,
    })
}

fn append_bytes(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), DockerError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
        .map_err(|source| DockerError::Io {
            path: PathBuf::from(path),
            source,
        })
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> Result<(), DockerError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(|source| DockerError::Io {
            path: PathBuf::from(path),
            source,
        })
}

fn absolute(path: &Path) -> Result<PathBuf, DockerError> {
    std::path::absolute(path).map_err(|source| DockerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The loader and shared libraries `path` links (absolute host paths);
/// empty for a static binary.
pub fn shared_libraries(path: &Path) -> Result<Vec<PathBuf>, DockerError> {
    let Some(loader) = interpreter(path)? else {
        return Ok(Vec::new());
    };
    let out = std::process::Command::new(&loader)
        .arg("--list")
        .arg(path)
        .env_clear()
        .output()
        .map_err(|source| DockerError::Io {
            path: loader.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(DockerError::Libraries {
            path: path.to_path_buf(),
            reason: format!(
                "{} --list exited with {}: {}",
                loader.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let mut libs = vec![loader];
    for line in text.lines() {
        let line = line.trim();
        let target = match line.split_once("=>") {
            Some((lib, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(DockerError::Libraries {
                        path: path.to_path_buf(),
                        reason: format!("{} is not found", lib.trim()),
                    });
                }
                target
            }
            None => line,
        };
        let file = target.split(" (").next().unwrap_or_default().trim();
        if file.starts_with('/') {
            libs.push(PathBuf::from(file));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

const PT_INTERP: u32 = 3;

/// The `PT_INTERP` path of an ELF file (its dynamic loader), `None` for a
/// static one. Reads the headers only.
pub fn interpreter(path: &Path) -> Result<Option<PathBuf>, DockerError> {
    let not_elf = || DockerError::Libraries {
        path: path.to_path_buf(),
        reason: "not an ELF file".into(),
    };
    let io = |source| DockerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).map_err(|_| not_elf())?;
    if &head[..4] != b"\x7fELF" {
        return Err(not_elf());
    }
    let wide = head[4] == 2;
    let little = head[5] == 1;
    let num = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        if little {
            for &x in b.iter().rev() {
                v = (v << 8) | u64::from(x);
            }
        } else {
            for &x in b {
                v = (v << 8) | u64::from(x);
            }
        }
        v
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            num(&head[0x20..0x28]),
            num(&head[0x36..0x38]),
            num(&head[0x38..0x3a]),
        )
    } else {
        (
            num(&head[0x1c..0x20]),
            num(&head[0x2a..0x2c]),
            num(&head[0x2c..0x2e]),
        )
    };
    let min_entry = if wide { 0x38 } else { 0x20 };
    if phentsize < min_entry || phentsize > 256 || phnum > 4096 {
        return Err(not_elf());
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    f.seek(SeekFrom::Start(phoff)).map_err(io)?;
    f.read_exact(&mut table).map_err(|_| not_elf())?;
    for ph in table.chunks(phentsize as usize) {
        if num(&ph[0..4]) != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if wide {
            (num(&ph[0x08..0x10]), num(&ph[0x20..0x28]))
        } else {
            (num(&ph[0x04..0x08]), num(&ph[0x10..0x14]))
        };
        if size == 0 || size > 4096 {
            return Err(not_elf());
        }
        let mut name = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        f.read_exact(&mut name).map_err(|_| not_elf())?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let text = String::from_utf8_lossy(&name[..end]).into_owned();
        return Ok(Some(PathBuf::from(text)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_valid_references() {
        assert_eq!(
            image_tag("20261201-231500-ab12", "Sample_Node"),
            "rift-run/20261201-231500-ab12/sample-node:latest"
        );
        assert_eq!(reference_component("--"), "x");
    }

    #[test]
    fn a_binary_under_tmp_gives_one_tmp_entry() {
        let sleep = Path::new("/bin/sleep");
        if !sleep.exists() {
            eprintln!("skipping: no /bin/sleep");
            return;
        }
        // A clone under /tmp: the binary's own directories include /tmp.
        let dir = tempfile::Builder::new()
            .prefix("rift-image-test")
            .tempdir_in("/tmp")
            .unwrap();
        let copy = dir.path().join("sleep");
        std::fs::copy(sleep, &copy).unwrap();
        let layer = rootfs_layer(&[copy]).unwrap();
        let mut archive = tar::Archive::new(layer.as_slice());
        let mut seen = BTreeSet::new();
        for entry in archive.entries().unwrap() {
            let path = entry.unwrap().path().unwrap().into_owned();
            let path = path.to_string_lossy().trim_end_matches('/').to_string();
            assert!(seen.insert(path.clone()), "`{path}` twice in the layer");
        }
        assert!(seen.contains("tmp"), "{seen:?}");
    }

    #[test]
    fn sleep_links_libc_through_its_loader() {
        let sleep = Path::new("/bin/sleep");
        if !sleep.exists() {
            eprintln!("skipping: no /bin/sleep");
            return;
        }
        let libs = shared_libraries(sleep).unwrap();
        let loader = interpreter(sleep).unwrap().unwrap();
        assert!(libs.contains(&loader), "{libs:?}");
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}
