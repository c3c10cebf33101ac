# vmm/rules.mk — the VMM's C tests (ASan/UBSan), its benchmark and the tiny
# test guests. Included by native/Makefile (paths relative to native/).
VMM_SRCS := $(wildcard vmm/*.c)
VMM_HDRS := $(wildcard vmm/*.h) include/vmm.h include/abi.h
TEST_GUESTS := echo counter spin crash rogue big cpuinfo fill caller
TEST_GUEST_ELFS := $(TEST_GUESTS:%=$(OUT)/guests/%.elf)
VMM_TESTS := test_vmm test_snapshot_fuzz test_derive test_async test_recycle test_calls test_shm
VMM_TEST_BINS := $(VMM_TESTS:%=$(OUT)/test/%)

.PHONY: vmm-leak vmm-tsan bench
guests:: $(TEST_GUEST_ELFS)

$(OUT)/guests/%.elf: test/guests/%.c test/guests/crt0.S test/guests/guest.h test/guests/guest.ld include/abi.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -T test/guests/guest.ld -Wl,--build-id=none -o $@ test/guests/crt0.S $<

$(OUT)/test/%: test/%.c test/check.h test/util.h $(VMM_SRCS) $(VMM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Ivmm -o $@ $< $(VMM_SRCS) -lpthread

test:: $(TEST_GUEST_ELFS) $(VMM_TEST_BINS) $(OUT)/bench/test_leak
	$(OUT)/test/test_vmm $(OUT)/guests
	$(OUT)/test/test_snapshot_fuzz $(OUT)/guests
	$(OUT)/test/test_derive $(OUT)/guests
	$(OUT)/test/test_async $(OUT)/guests
	$(OUT)/test/test_recycle $(OUT)/guests
	$(OUT)/test/test_calls $(OUT)/guests
	$(OUT)/test/test_shm $(OUT)/guests
	$(OUT)/bench/test_leak $(OUT)/guests

# test_leak: 10,000 fork+echo+destroy cycles, fd and RSS checked (~20 s; built
# optimised without ASan, whose quarantine would hide RSS behaviour; also
# `make -C native vmm-leak`). bench_fork: `make -C native bench`.
$(OUT)/bench/%: test/%.c test/check.h test/util.h $(VMM_SRCS) $(VMM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Ivmm -o $@ $< $(VMM_SRCS) -lpthread

vmm-leak: $(TEST_GUEST_ELFS) $(OUT)/bench/test_leak
	$(OUT)/bench/test_leak $(OUT)/guests

bench: $(TEST_GUEST_ELFS) $(OUT)/bench/bench_fork
	$(OUT)/bench/bench_fork $(OUT)/guests

# The VMM tests under ThreadSanitizer (pool, kicks, workers, kept one-shots, shared memory): make -C native vmm-tsan
$(OUT)/tsan/%: test/%.c test/check.h test/util.h $(VMM_SRCS) $(VMM_HDRS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Ivmm -fsanitize=thread -o $@ $< $(VMM_SRCS) -lpthread

vmm-tsan: $(TEST_GUEST_ELFS) $(OUT)/tsan/test_vmm $(OUT)/tsan/test_async $(OUT)/tsan/test_calls $(OUT)/tsan/test_shm
	TSAN_OPTIONS=halt_on_error=1 $(OUT)/tsan/test_vmm $(OUT)/guests
	TSAN_OPTIONS=halt_on_error=1 $(OUT)/tsan/test_async $(OUT)/guests
	TSAN_OPTIONS=halt_on_error=1 $(OUT)/tsan/test_calls $(OUT)/guests
	TSAN_OPTIONS=halt_on_error=1 $(OUT)/tsan/test_shm $(OUT)/guests
