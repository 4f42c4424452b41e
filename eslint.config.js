// ESLint owns correctness, Prettier owns layout (STYLE.md 3.9).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** `p.then(ok, fail)` as a statement: a throw in `ok` becomes an unhandled rejection. */
const LAST_THEN_WITH_TWO_HANDLERS = {
  selector:
    "ExpressionStatement > CallExpression[callee.property.name='then'][arguments.length=2], ExpressionStatement > UnaryExpression[operator='void'] > CallExpression[callee.property.name='then'][arguments.length=2]",
  message:
    'A throw inside the first handler of a last .then(ok, fail) is unhandled: end the chain with .catch().',
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'web/demo/', 'web/admin/', '.tmp*/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['bin/*.js', 'scripts/*.mjs', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(fs|net|http|https|crypto|path|os|events|stream|child_process|url|util|dns|tls|zlib)$',
              message: 'Use the node: prefix.',
            },
          ],
        },
      ],
      'no-console': 'error',
    },
  },
  {
    // Nothing a client sends may end the process: in src/, a promise is never dropped with `void`; every
    // one is awaited, returned, or ends with its error path (.catch). A last `.then(ok, fail)` is not
    // enough: a throw inside `ok` is not caught by `fail` (issue 13, finding 1).
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { ignoreVoid: false, ignoreIIFE: false },
      ],
      'no-restricted-syntax': ['error', LAST_THEN_WITH_TWO_HANDLERS],
    },
  },
  {
    // Only the CLI prints usage and sets exit codes; only it (and its signal handling) may exit the process.
    files: ['src/**/*.ts'],
    ignores: ['src/commands/cli.ts', 'src/commands/signals.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        LAST_THEN_WITH_TWO_HANDLERS,
        {
          selector: "MemberExpression[object.name='process'][property.name='exit']",
          message: 'Only src/commands/cli.ts and src/commands/signals.ts may exit the process.',
        },
      ],
    },
  },
  {
    // The browser core stays Node-free and tiny: it may import only the shared wire constants (STYLE.md 3.8).
    files: ['web/**/*.ts'],
    ignores: ['web/node/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!(\\.\\./src/protocol\\.js|\\./[a-z-]+\\.js)$)',
              message: 'web/ may import only ../src/protocol.js and its own modules.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['web/node/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!(\\.\\./gangway\\.js|node:stream)$)',
              message: 'gangway/node may import only the core and node:stream.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts', 'scripts/*.mjs', 'bench/**/*.ts', 'bin/*.js'],

    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['bin/*.js', 'scripts/*.mjs', 'eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
)
