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

    /**
     * rtol/atol from the case (the whole record null to use the dtype's default). A half the case
     * leaves out is NaN and takes the dtype's default, so {"rtol": x} alone does not mean atol 0.
     */
    public record Tolerance(double rtol, double atol) {
        /** This tolerance with its missing halves taken from {@code defaults}. */
        public Tolerance or(Tolerance defaults) {
            return new Tolerance(Double.isNaN(rtol) ? defaults.rtol() : rtol, Double.isNaN(atol) ? defaults.atol() : atol);
        }
    }
}
