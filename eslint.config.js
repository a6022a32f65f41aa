import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layers (DESIGN.md): imports point down only — commands → services → engine → backends → domain
 * → lib; cli, server and job sit beside commands. An import of a higher layer fails the lint.
 */
const LAYERS = [
  { files: ['src/lib/**'], above: ['cli', 'commands', 'server', 'job', 'services', 'engine', 'backends', 'config', 'domain'] },
  { files: ['src/domain/**'], above: ['cli', 'commands', 'server', 'job', 'services', 'engine', 'backends', 'config'] },
  { files: ['src/config/**'], above: ['cli', 'commands', 'server', 'job', 'services', 'engine', 'backends'] },
  { files: ['src/backends/**'], above: ['cli', 'commands', 'server', 'job', 'services', 'engine'] },
  { files: ['src/engine/**'], above: ['cli', 'commands', 'server', 'job', 'services'] },
  { files: ['src/services/**'], above: ['cli', 'commands', 'server', 'job'] },
];
const layerRules = LAYERS.map(({ files, above }) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^(\\.\\./)+(${above.join('|')})/`,
            message: `layers point down only (DESIGN.md): ${files[0].slice(4, -3)} may not import ${above.join(', ')}`,
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tools/', 'commands-docs/', 'coverage/', 'demo/', 'bench/.data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'enums are not erasable; use a const object' }],
    },
  },
  ...layerRules,
);
