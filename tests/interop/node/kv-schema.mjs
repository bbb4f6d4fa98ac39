// Loads kv.v1.KVService from a protoc descriptor set at run time (no codegen).
import { readFileSync } from "node:fs";
import { fromBinary, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

export function loadKV(descriptorSetPath) {
  const fds = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath));
  const registry = createFileRegistry(fds);
  const service = registry.getService("kv.v1.KVService");
  if (!service) throw new Error("kv.v1.KVService not in " + descriptorSetPath);
  const m = Object.fromEntries(service.methods.map((x) => [x.name, x.localName]));
  return { registry, service, m };
}
