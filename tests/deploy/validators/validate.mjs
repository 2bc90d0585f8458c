// Validates custom resources against their CRD schemas (kubernetes-models' generated
// validators). Reads a JSON array of objects on stdin; prints one JSON line per object:
// {"kind", "name", "errors": [...]}; exits 1 when any object is invalid or of a kind no
// package here models.
import * as gatewayApi from "@kubernetes-models/gateway-api";
import * as keda from "@kubernetes-models/keda";
import * as prometheusOperator from "@kubernetes-models/prometheus-operator";

const models = new Map();
function collect(namespace, depth = 0) {
  for (const value of Object.values(namespace)) {
    if (typeof value === "function" && value.apiVersion && value.kind) {
      models.set(`${value.apiVersion}/${value.kind}`, value);
    } else if (value && typeof value === "object" && depth < 3) {
      collect(value, depth + 1);
    }
  }
}
[gatewayApi, keda, prometheusOperator].forEach((pkg) => collect(pkg));

let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const object of JSON.parse(input)) {
  const Model = models.get(`${object.apiVersion}/${object.kind}`);
  const result = { kind: `${object.apiVersion}/${object.kind}`, name: object.metadata?.name, errors: [] };
  if (!Model) {
    result.errors.push("no schema for this kind");
  } else {
    try {
      new Model(object).validate();
    } catch (error) {
      result.errors.push(String(error.message ?? error));
    }
  }
  failed ||= result.errors.length > 0;
  console.log(JSON.stringify(result));
}
process.exit(failed ? 1 : 0);
