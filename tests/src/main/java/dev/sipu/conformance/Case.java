package dev.sipu.conformance;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Map;

/**
 * One recorded case of a suite (FORMAT.md): the op, its arguments, what to expect and how to compare.
 *
 * @param file the suite file it came from (its tensors live in the matching .safetensors)
 */
public record Case(String id, String op, List<JsonNode> args, Map<String, JsonNode> kwargs, JsonNode expect,
                   String compare, Tolerance tol, Suite.File file) {

    public boolean expectsError() { return expect.path("error").asBoolean(false); }

    /** rtol/atol from the case, or null to use the dtype's default. */
    public record Tolerance(double rtol, double atol) {}
}
