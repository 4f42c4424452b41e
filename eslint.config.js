// ESLint owns correctness, Prettier owns layout (STYLE.md 3.9).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

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
    // Only the CLI prints usage and sets exit codes; only it (and its signal handling) may exit the process.
    files: ['src/**/*.ts'],
    ignores: ['src/commands/cli.ts', 'src/commands/signals.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
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
