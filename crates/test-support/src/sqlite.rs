//! A fresh SQLite file per test, copied from a template file migrated once per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dirs::{process_scratch_dir, unique_name};
use crate::error::RigError;

/// A SQLite database file of its own for one test, holding the migrations of a given folder;
/// deleted when the value is dropped (and with the process scratch directory in any case).
#[derive(Debug)]
pub struct TestSqlite {
    path: PathBuf,
}

impl TestSqlite {
    /// A fresh file holding the migrations in `migrations_dir`.
    pub fn new(migrations_dir: &Path) -> Result<Self, RigError> {
        let template = template_for(migrations_dir)?;
        let path = process_scratch_dir()?.join(format!("{}.sqlite3", unique_name("test")));
        std::fs::copy(&template, &path).map_err(RigError::io(format!(
            "copying {} to {}",
            template.display(),
            path.display()
        )))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's path as a connection string (what diesel's `SqliteConnection` takes).
    pub fn url(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TestSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

fn template_for(migrations_dir: &Path) -> Result<PathBuf, RigError> {
    static TEMPLATES: Mutex<Option<HashMap<u64, PathBuf>>> = Mutex::new(None);
    let fingerprint = crate::migrations::fingerprint(migrations_dir)?;
    let mut templates = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    let templates = templates.get_or_insert_with(HashMap::new);
    if let Some(path) = templates.get(&fingerprint) {
        return Ok(path.clone());
    }
    let path = process_scratch_dir()?.join(format!("template-{fingerprint:016x}.sqlite3"));
    let _ = std::fs::remove_file(&path);
    crate::migrations::run_sqlite(&path, migrations_dir)?;
    templates.insert(fingerprint, path.clone());
    Ok(path)
}
