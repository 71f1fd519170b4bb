// ESLint: `npm run lint` (zero warnings), run by `npm test` before the type check.
// Type-aware typescript-eslint (strictTypeChecked) over every TypeScript folder: a
// promise nobody awaits is a lost acknowledgement, so no-floating-promises and
// no-misused-promises are errors everywhere. Style: @stylistic rules that the code's
// hand style (2 spaces, no semicolons, single quotes, `function name (`) already keeps.
//
// typescript-eslint comes from tools/typescript-eslint, a local package that carries
// its own TypeScript 5.9: the project's `typescript` is 7 (the native compiler), whose
// npm package has no JavaScript compiler API for typescript-eslint to run on. `tsc -p .`
// (TypeScript 7) stays the type check. package.json's override of ts-api-utils's
// typescript peer keeps that helper (which typescript-eslint loads) beside the 5.9
// copy too, instead of hoisted next to TypeScript 7.
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import globals from 'globals'
import tseslint from '@vitalflow/typescript-eslint'

export default tseslint.config(
  {
    // examples/ is the Python reference device; dist/ is build output
    ignores: ['dist/', 'web/dist/', 'examples/', 'data/', '.vitest-tmp/', '.scratch/', '**/node_modules/'],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // in strictTypeChecked already; spelled out because they are the point of the gate
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // noUncheckedIndexedAccess types every index as `T | undefined`; `x[i]!` is how
      // this code says "in range by construction" (decoders, hot loops, tests reading
      // rows they just wrote). Several hundred such sites; a check at each would be noise.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // numbers and booleans read fine in messages; objects and unions with
      // undefined/null still need an explicit String()/JSON.stringify
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `return callback(err)` is the callback idiom of aedes' hooks (src/broker); a
      // rule against returning a void call would rewrite each into two statements
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // Off: here it flags defensive checks, not dead ones. Row values from ClickHouse
      // and keys cast from strings are typed narrower than what arrives (a nullable
      // column, an unknown table name), flags set by callbacks or across an await are
      // narrowed by TypeScript as if nothing else ran (`while (this.checkpointDirty)`),
      // and tests tear down with `x?.close()` because a failed beforeAll leaves x unset.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Off: Number(x) and String(x) on values typed number/string are deliberate where
      // the type is a promise the data may not keep: rows from ClickHouse's JSON formats
      // (64-bit integers arrive as strings), `(err as Error).message` of a thrown non-Error
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
      // fastify handlers and interface implementations are `async` by contract (the
      // returned promise is what fastify sends); an await inside is not the point
      '@typescript-eslint/require-await': 'off',
      // a type parameter used only in the return type is how `brand<TenantId>('tenant')`
      // and `protoDecode<T>()` name what they produce
      '@typescript-eslint/no-unnecessary-type-parameters': 'off',
      // `_name` marks a deliberately unused parameter or destructured field (tsconfig's
      // noUnusedParameters follows the same convention)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Tests read JSON answers (`any`) and compare with vitest's asymmetric matchers
    // (`expect.any(Number)` is typed `any`); a wrong shape fails the assertion itself.
    // Promises stay checked: a floating one there is a test that passes unawaited.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // plain JavaScript (config, lockfile script, the chDB reader run as a child
    // process): no type information, Node globals
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
  {
    // the care web app's sources run in the browser, not in Node
    files: ['web/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  stylistic.configs.customize({
    indent: 2,
    quotes: 'single',
    semi: false,
    jsx: false,
    braceStyle: '1tbs',
    commaDangle: 'always-multiline',
    arrowParens: true,
    blockSpacing: true,
  }),
  {
    rules: {
      // `function name (` and `async (` with a space, as the code is written
      '@stylistic/space-before-function-paren': ['error', 'always'],
      // strings that contain a single quote may use double quotes; templates are free
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      // short related one-liners sit together (getters, small guards)
      '@stylistic/lines-between-class-members': ['error', 'always', { exceptAfterSingleLine: true }],
      // The code keeps small guards on one line (`if (!ok) { reply(...); return }`) and
      // groups short type members on a line (`first: number; max: number`), which a
      // multi-line type needs `;` for: neither is a defect, and the rules that forbid
      // them would rewrite hundreds of lines.
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/member-delimiter-style': 'off',
      // union types are written with a leading `|` per line and with a trailing one;
      // both read well. Other operators go at the end of the line.
      '@stylistic/operator-linebreak': ['error', 'after', { overrides: { '?': 'before', ':': 'before', '|': 'ignore', '&': 'ignore' } }],
      // chained `a ? x : b ? y : z` conditions are laid out one case per line
      '@stylistic/multiline-ternary': 'off',
      // lookup tables quote only the keys that need it (`'Content-Type'`) next to bare ones
      '@stylistic/quote-props': 'off',
    },
  },
)
