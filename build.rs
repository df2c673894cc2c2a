//! Rebuilds when a migration changes: `sqlx::migrate!` embeds the migration files at compile
//! time, and without this hint cargo would not notice an edited one.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
