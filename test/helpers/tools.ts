import { spawnSync } from 'node:child_process';

/**
 * The one rule for system tools the tests need (issue 26): .ci/run installs every one and sets
 * WSGATE_TEST_TOOLS=required, where a missing tool fails the run; elsewhere a test that needs a missing
 * tool is skipped with the reason, through node:test's own skip, so the summary's `skipped` counts it.
 */
export const TOOLS_REQUIRED = process.env.WSGATE_TEST_TOOLS === 'required';

/**
 * `false` when `command` (a name on the PATH or an absolute path) runs `versionArgs` with status 0, else
 * the skip reason naming the Debian package. Use as `it(name, { skip: missingTool(…) }, …)`: on each test, not on a describe,
 * whose skip node:test does not count.
 */
export function missingTool(command: string, debianPackage: string, versionArgs: readonly string[] = ['--version']): string | false {
  const r = spawnSync(command, versionArgs, { stdio: 'ignore', timeout: 10_000 });
  if (r.error === undefined && r.status === 0) return false;
  const reason = `${command} is not installed (Debian: apt-get install ${debianPackage}; .ci/run installs it)`;
  if (TOOLS_REQUIRED) throw new Error(`WSGATE_TEST_TOOLS=required: ${reason}`);
  return reason;
}
