// ES2024 String#isWellFormed: in Node 20 (V8 11.3) but not in the ES2023 lib this project compiles against
// (lib ES2024 would also admit APIs Node 20 lacks, such as Promise.withResolvers).
interface String {
  isWellFormed(): boolean;
}
