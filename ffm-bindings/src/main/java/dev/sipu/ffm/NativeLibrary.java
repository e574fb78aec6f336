package dev.sipu.ffm;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Loads {@code libsipu_kernels.so} from the kernels-c jar, with no flag or path set by the user: the
 * library is copied out of the class path into a temporary file once per JVM and loaded with
 * {@link System#load}, which makes its symbols visible to the jextract bindings' loader lookup
 * (they live in this class loader).
 *
 * <p>{@code -Dsipu.library.path=/path/libsipu_kernels.so} loads another build instead (a sanitizer
 * build, or a real SIPU SDK behind the same header).
 */
public final class NativeLibrary {
    private NativeLibrary() {}

    public static final String RESOURCE = "/dev/sipu/native/linux-x86_64/libsipu_kernels.so";

    private static final class Holder {
        static final Throwable FAILURE = load();
    }

    /** Loads the library once; throws {@link UnsatisfiedLinkError} with the reason when it cannot be. */
    public static void ensureLoaded() {
        Throwable f = Holder.FAILURE;
        if (f != null) {
            UnsatisfiedLinkError e = new UnsatisfiedLinkError("libsipu_kernels could not be loaded: " + f.getMessage());
            e.initCause(f);
            throw e;
        }
    }

    /** True when the library is loaded and usable. */
    public static boolean isAvailable() { return Holder.FAILURE == null; }

    private static Throwable load() {
        try {
            String override = System.getProperty("sipu.library.path");
            if (override != null && !override.isBlank()) {
                System.load(Path.of(override).toAbsolutePath().toString());
                return null;
            }
            if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")
                    || !System.getProperty("os.arch", "").matches("amd64|x86_64")) {
                return new UnsupportedOperationException("libsipu_kernels is built for linux-x86_64 only, this is "
                        + System.getProperty("os.name") + "/" + System.getProperty("os.arch"));
            }
            try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE)) {
                if (in == null) return new IllegalStateException(RESOURCE + " is not on the class path (kernels-c jar missing?)");
                Path dir = Files.createTempDirectory("sipu-kernels");
                Path lib = dir.resolve("libsipu_kernels.so");
                Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
                System.load(lib.toString());
                // Once mapped, the file is no longer needed; remove it so temp dirs do not pile up.
                Files.deleteIfExists(lib);
                Files.deleteIfExists(dir);
            }
            return null;
        } catch (IOException e) {
            return new UncheckedIOException(e);
        } catch (Throwable t) {
            return t;
        }
    }
}
