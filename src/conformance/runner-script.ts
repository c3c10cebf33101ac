// runner-script.ts — the Python program the conformance harness runs, the same
// text in a fork and on the host: it unpacks the bundled test files (test/ of
// CPython's suite) into a temp dir, runs one test.test_* module with unittest
// and a TestResult that writes one tab-separated line per test to stdout (outcome,
// id, and the exception or skip reason in one line), and
// ends with a summary line. A missing summary line means the run died early.

/** Marker that starts every machine-readable line (tests' own output never starts with it). */
export const MARK = '\x1eFBCONF';

const RUNNER_PY = String.raw`
import base64 as _b64, importlib as _il, json as _json, os as _os, sys as _sys, tempfile as _tf, time as _time, zlib as _zlib
import unittest as _ut
_out = _sys.stdout
_MARK = '\x1eFBCONF'

def _emit(*fields):
    _out.write(_MARK + '\t' + '\t'.join(str(f).replace('\t', ' ').replace('\n', ' ') for f in fields) + '\n')
    _out.flush()

def _unpack(blob, root):
    raw = _zlib.decompress(_b64.b64decode(blob))
    hlen = int.from_bytes(raw[:8], 'little')
    off = 8 + hlen
    for path, size in _json.loads(raw[8:off]):
        p = _os.path.join(root, path)
        _os.makedirs(_os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(raw[off:off + size])
        off += size

def _why(err):
    # The exception line, and for errors (not assertion failures) where it was raised:
    # 'OSError: [Errno 38] Function not implemented @subprocess.py:_fork_exec' tells processes from timers.
    try:
        text = '%s: %s' % (err[0].__name__, err[1])
        tb = err[2]
        if tb is not None and not issubclass(err[0], AssertionError):
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            text = text[:160] + ' @%s:%s' % (_os.path.basename(code.co_filename), code.co_name)
        return text[:240]
    except BaseException:
        return '?'

class _Result(_ut.TestResult):
    def __init__(self):
        super().__init__()
        self._cur = {}
    def startTest(self, test):
        super().startTest(test)
        self._cur[test.id()] = ('pass', '')
    def _set(self, test, outcome, why=''):
        tid = test.id()
        if tid in self._cur:
            if self._cur[tid][0] in ('pass', 'skip', 'xfail'):
                self._cur[tid] = (outcome, why)
        else:  # setUpClass/setUpModule errors: no startTest/stopTest
            _emit('T', outcome, tid, why)
    def addError(self, test, err):
        super().addError(test, err); self._set(test, 'error', _why(err))
    def addFailure(self, test, err):
        super().addFailure(test, err); self._set(test, 'fail', _why(err))
    def addSkip(self, test, reason):
        super().addSkip(test, reason); self._set(test, 'skip', str(reason)[:200])
    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err); self._set(test, 'xfail')
    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test); self._set(test, 'fail')
    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._set(test, 'fail' if issubclass(err[0], test.failureException) else 'error', _why(err))
    def stopTest(self, test):
        super().stopTest(test)
        tid = test.id()
        outcome, why = self._cur.pop(tid, ('pass', ''))
        _emit('T', outcome, tid, why)

def _main(module, blobs, extras):
    t0 = _time.monotonic()
    root = _tf.mkdtemp(prefix='fbconf-')
    for b in blobs:
        _unpack(b, root)
    _sys.path.insert(0, root)
    for k in list(_sys.modules):
        if k == 'test' or k.startswith('test.'):
            del _sys.modules[k]
    for pkg, sub in extras:  # suites that live in a stdlib package (ctypes.test, unittest.test)
        p = _il.import_module(pkg)
        p.__path__.append(_os.path.join(root, sub))
    import test.support as _support
    _support.use_resources = []  # like regrtest without -u: no network, no slow resources
    cwd = _tf.mkdtemp(prefix='fbconf-cwd-')
    _os.chdir(cwd)
    try:
        mod = _il.import_module('test.' + module)
        suite = _ut.defaultTestLoader.loadTestsFromModule(mod)
    except _ut.SkipTest as e:
        _emit('END', _json.dumps({'module': module, 'skipped': str(e), 'seconds': _time.monotonic() - t0}))
        return
    except BaseException as e:
        _emit('END', _json.dumps({'module': module, 'importError': '%s: %s' % (type(e).__name__, e), 'seconds': _time.monotonic() - t0}))
        return
    result = _Result()
    suite.run(result)
    _emit('END', _json.dumps({'module': module, 'run': result.testsRun, 'seconds': _time.monotonic() - t0}))

_main(_MODULE, _BLOBS, _EXTRAS)
`;

/** The program text for one module: the runner with its inputs bound. */
export function runnerCode(module: string, blobs: string[], extras: Array<[string, string]> = []): string {
  if (!/^test_[A-Za-z0-9_]+$/.test(module)) throw new RangeError(`not a test module name: ${module}`);
  return `_MODULE = ${JSON.stringify(module)}\n_BLOBS = ${JSON.stringify(blobs)}\n_EXTRAS = ${JSON.stringify(extras)}\n${RUNNER_PY}`;
}
