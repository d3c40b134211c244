// `sqlx::migrate!` embeds the migrations at compile time but does not tell cargo to rebuild when
// one is added or edited; without this, a new migration file could be left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
