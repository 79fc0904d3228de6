export { SubmissionReader, type SubmissionReaderOptions } from './submission-reader.ts';
export { SubmissionParser, type SubmissionParserOptions } from './submission-parser.ts';
export { validateSubmission, validateBuffer } from './validate-submission.ts';
export { acceptedVerdict, refusedVerdict, type Verdict } from './verdict.ts';
