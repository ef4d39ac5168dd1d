import { AslDefinition } from './definition';

/** A Mermaid flowchart of an ASL definition: the README's diagram, kept in sync by a test. */
export function toMermaid(definition: AslDefinition): string {
  const lines = ['flowchart TD', `  Start([start]) --> ${definition.StartAt}`];
  for (const [name, state] of Object.entries(definition.States)) {
    const shape =
      state.Type === 'Choice'
        ? `${name}{${name}}`
        : state.Type === 'Fail'
          ? `${name}[[${name}]]`
          : state.Type === 'Task'
            ? `${name}[${name}]`
            : `${name}(${name})`;
    lines.push(`  ${shape}`);
    for (const choice of state.Choices ?? []) lines.push(`  ${name} -->|${choiceLabel(choice)}| ${choice.Next}`);
    if (state.Default) lines.push(`  ${name} -->|otherwise| ${state.Default}`);
    if (state.Next) lines.push(`  ${name} --> ${state.Next}`);
    for (const c of state.Catch ?? []) lines.push(`  ${name} -.->|${c.ErrorEquals.join(', ')}| ${c.Next}`);
    if (state.End) lines.push(`  ${name} --> Done([succeeded])`);
  }
  return lines.join('\n');
}

function choiceLabel(rule: Record<string, unknown>): string {
  const values: string[] = [];
  const walk = (r: Record<string, unknown>) => {
    if (typeof r.StringEquals === 'string') values.push(r.StringEquals);
    for (const sub of (r.Or ?? r.And ?? []) as Record<string, unknown>[]) walk(sub);
  };
  walk(rule);
  return `from = ${values.join(' or ')}`;
}
