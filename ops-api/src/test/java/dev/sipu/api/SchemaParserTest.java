package dev.sipu.api;

import dev.sipu.api.schema.ArgType;
import dev.sipu.api.schema.OpSchema;
import dev.sipu.api.schema.OpTable;
import dev.sipu.api.schema.SchemaParser;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SchemaParserTest {

    @Test
    void parsesAtenSchemaWithKwargsAndDefaults() {
        OpSchema s = SchemaParser.parse("add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor");
        assertEquals("aten::add.Tensor", s.name());
        assertEquals("aten::add", s.baseName());
        assertEquals(3, s.arguments().size());
        assertTrue(s.arguments().get(2).kwargOnly());
        assertEquals(Scalar.of(1L), s.arguments().get(2).defaultValue());
        assertEquals(ArgType.TENSOR, s.returns().getFirst().type());
    }

    @Test
    void parsesWrittenOptionalListAndAliasAnnotations() {
        OpSchema s = SchemaParser.parse("_C::rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, Tensor cos_sin_cache, bool is_neox) -> ()");
        assertTrue(s.arguments().get(1).written());
        assertTrue(s.arguments().get(2).written());
        assertTrue(s.arguments().get(2).optional());
        assertTrue(s.returns().isEmpty());
        assertArrayEquals(new int[] {1, 2}, s.writtenArguments());

        OpSchema chunk = SchemaParser.parse("aten::chunk(Tensor(a -> *) self, int chunks, int dim=0) -> Tensor(a)[]");
        assertEquals(ArgType.TENSOR_LIST, chunk.returns().getFirst().type());
        assertEquals("a", chunk.returns().getFirst().aliasOf());

        OpSchema sum = SchemaParser.parse("aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
        assertEquals(1, sum.arguments().get(1).fixedLength());
        OpSchema max = SchemaParser.parse("aten::max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)");
        assertEquals(2, max.returns().size());
        assertEquals("indices", max.returns().get(1).name());
    }

    @Test
    void bindFillsDefaultsConvertsAndRejectsBadArguments() {
        OpSchema s = OpTable.standard().get("aten::sum.dim_IntList");
        try (Tensor x = Tensor.adopt(CpuMemory.allocate(4), DType.FLOAT32, 1)) {
            Object[] bound = s.bind(new Object[] {x, 1, true}, Map.of());
            assertArrayEquals(new long[] {1}, (long[]) bound[1]);
            assertEquals(Boolean.TRUE, bound[2]);
            assertNull(bound[3]);
        }
        OpArgumentException e = assertThrows(OpArgumentException.class,
                () -> OpTable.standard().get("aten::add.Tensor").bind(new Object[] {null}, Map.of()));
        assertEquals("self", e.argument());
        assertThrows(OpArgumentException.class,
                () -> OpTable.standard().get("aten::add.Tensor").bind(new Object[0], Map.of("beta", 1)));
    }

    @Test
    void theTableDeclaresEveryOpOnce() {
        OpTable t = OpTable.standard();
        assertTrue(t.all().size() >= 130, "ops: " + t.all().size());
        assertTrue(t.get("aten::linear").composite());
        assertFalse(t.get("aten::mm").composite());
        assertEquals("matmul", t.group("aten::mm"));
    }
}
