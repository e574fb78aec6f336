package dev.sipu.api;

import org.junit.jupiter.api.Test;

import static dev.sipu.api.DType.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TypePromotionTest {

    @Test
    void promoteTypesTable() {
        assertEquals(INT16, TypePromotion.promote(UINT8, INT8));
        assertEquals(INT32, TypePromotion.promote(UINT8, INT32));
        assertEquals(FLOAT32, TypePromotion.promote(BFLOAT16, FLOAT16));
        assertEquals(FLOAT32, TypePromotion.promote(BFLOAT16, FLOAT32));
        assertEquals(BFLOAT16, TypePromotion.promote(BFLOAT16, INT64));
        assertEquals(INT64, TypePromotion.promote(BOOL, INT64));
        assertEquals(FLOAT64, TypePromotion.promote(FLOAT64, FLOAT16));
        assertThrows(IllegalArgumentException.class, () -> TypePromotion.promote(FLOAT8_E4M3FN, FLOAT32));
    }

    @Test
    void resultTypeHonoursCategoriesAndPriorities() {
        // int tensor + float scalar -> default float
        assertEquals(FLOAT32, TypePromotion.state().tensor(INT64, 2).scalar(Scalar.of(2.5)).result());
        // int tensor + int scalar stays int32
        assertEquals(INT32, TypePromotion.state().tensor(INT32, 1).scalar(Scalar.of(3L)).result());
        // a 0-dim f64 tensor does not promote an f32 tensor with dims
        assertEquals(FLOAT32, TypePromotion.state().tensor(FLOAT32, 2).tensor(FLOAT64, 0).result());
        // but a 0-dim float tensor does promote an int tensor (higher category)
        assertEquals(FLOAT64, TypePromotion.state().tensor(INT64, 2).tensor(FLOAT64, 0).result());
        // bf16 tensor with a float scalar stays bf16
        assertEquals(BFLOAT16, TypePromotion.state().tensor(BFLOAT16, 1).scalar(Scalar.of(0.5)).result());
        // bool tensor + int scalar -> int64
        assertEquals(INT64, TypePromotion.state().tensor(BOOL, 1).scalar(Scalar.of(1L)).result());
        // bool + bool scalar stays bool
        assertEquals(BOOL, TypePromotion.state().tensor(BOOL, 1).scalar(Scalar.of(true)).result());
        // uint8 0-dim with int8 dim tensor: same category, dim tensor wins
        assertEquals(INT8, TypePromotion.state().tensor(INT8, 1).tensor(UINT8, 0).result());
    }
}
